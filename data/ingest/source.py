"""Reading a CSV (optionally gzipped) or Parquet file in bounded chunks, keeping line numbers.

``chunks()`` gives every value as a stripped string ("" when empty), whatever the format, so
validation is the same for both. CSV lines keep their raw text for the quarantine; a Parquet row's
"raw text" is its values joined by commas, and its line number is counted as if it were a CSV
with a header.

``column_chunks()`` is the fast way for large files: Arrow columns as the file holds them (CSV:
the fields as written, parsed by pyarrow; Parquet: typed), for a caller that validates each
distinct value once (``column_text`` gives a value's text exactly as ``chunks()`` would). A CSV
block that pyarrow cannot split exactly as the line loop does comes as a ``Chunk`` instead.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data.ingest.csv_blocks import Block, header_end, parse_simple_block, record_blocks
from data.ingest.report import IngestError

DEFAULT_CHUNK_ROWS = 100_000
# Bytes read at a time per chunk row, for the block reader (a reading's line is about 40 bytes).
_READ_BYTES_PER_ROW = 64


@dataclass
class Chunk:
    """Up to ``chunk_rows`` data rows: values, 1-based line numbers, raw text, shape problems."""

    frame: pd.DataFrame
    line_numbers: np.ndarray
    # A reason per row whose field count does not match the header, else None.
    shape_problems: list[str | None]
    # CSV: each record's text as it stood in the file; Parquet: None (rebuilt from the values).
    raw: list[str] | None = None

    def __len__(self) -> int:
        return len(self.line_numbers)

    def raw_text(self, positions: np.ndarray) -> list[str]:
        if self.raw is not None:
            return [self.raw[position] for position in positions.tolist()]
        return _joined(self.frame.iloc[positions])


@dataclass
class ColumnChunk:
    """Up to ``chunk_rows`` data rows as Arrow columns, each row's line number, its raw text.

    Every row has the header's field count. CSV columns are strings as written (not stripped);
    Parquet columns keep their type. ``column_text`` turns values into ``Chunk`` text.
    """

    columns: dict[str, pa.Array]
    line_numbers: np.ndarray
    raw_text: Callable[[np.ndarray], list[str]]

    def __len__(self) -> int:
        return len(self.line_numbers)


def column_text(values: pa.Array) -> pd.Series:
    """Values as ``Chunk.frame`` holds them: text, nulls as "", stripped."""
    return pd.Series(_as_strings(values), dtype="str").str.strip()


def _joined(frame: pd.DataFrame) -> list[str]:
    return [",".join(row) for row in frame.itertuples(index=False, name=None)]


def open_source(path: str | Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Source:
    """Open ``path`` as Parquet (``.parquet``) or UTF-8 CSV (anything else; ``.gz`` is unpacked)."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: file not found or not a regular file")
    if path.name.lower().endswith(".parquet"):
        return ParquetSource(path, chunk_rows)
    return CsvSource(path, chunk_rows)


def require_columns(source: Source, required: tuple[str, ...]) -> None:
    missing = [name for name in required if name not in source.columns]
    if missing:
        raise IngestError(
            f"{source.path.name}: missing required column(s) {', '.join(missing)} "
            f"(the header has: {', '.join(source.columns) or 'nothing'})"
        )


def _normalise_header(names: list[str]) -> list[str]:
    return [name.strip().lower() for name in names]


def _records(handle: TextIO, first_line: int = 1) -> Iterator[tuple[int, str]]:
    """Yield (first line number, raw text) per CSV record; a quoted field may span lines."""
    buffer: list[str] = []
    start = 0
    in_quotes = False
    for number, line in enumerate(handle, start=first_line):
        if not buffer:
            if '"' not in line:
                yield number, line.rstrip("\r\n")
                continue
            start = number
        buffer.append(line)
        if line.count('"') % 2:
            in_quotes = not in_quotes
        if not in_quotes:
            yield start, "".join(buffer).rstrip("\r\n")
            buffer = []
    if buffer:
        yield start, "".join(buffer).rstrip("\r\n")


def _parse_records(raws: list[str]) -> list[list[str]]:
    try:
        rows = list(csv.reader(raws))
        if len(rows) == len(raws):
            return rows
    except csv.Error:
        pass
    # Rare: a malformed record. Parse one by one so each row stays tied to its line.
    rows = []
    for raw in raws:
        try:
            rows.append(next(csv.reader([raw]), []))
        except csv.Error:
            rows.append([])
    return rows


class CsvSource:
    def __init__(self, path: Path, chunk_rows: int) -> None:
        self.path = path
        self.chunk_rows = chunk_rows
        try:
            with self._open() as handle:
                header = next((raw for _, raw in _records(handle) if raw.strip()), None)
        except (OSError, UnicodeDecodeError, EOFError) as error:
            raise IngestError(f"{path.name}: cannot read the file: {error}") from error
        if header is None:
            raise IngestError(f"{path.name}: the file is empty (no header row)")
        self.columns = _normalise_header(_parse_records([header])[0])

    def _open(self) -> TextIO:
        if self.path.name.lower().endswith(".gz"):
            return gzip.open(self.path, "rt", encoding="utf-8-sig", newline="")
        return open(self.path, encoding="utf-8-sig", newline="")

    def _open_bytes(self) -> BinaryIO:
        if self.path.name.lower().endswith(".gz"):
            return gzip.open(self.path, "rb")
        return open(self.path, "rb")

    def column_chunks(self) -> Iterator[ColumnChunk | Chunk]:
        """The data rows, each block of simple lines parsed by pyarrow, the others line by line.

        Blocks end at record boundaries (``data.ingest.csv_blocks``), so the line loop reads any
        block alone with the line numbers and raw text it gives reading the whole file.
        """
        try:
            with self._open_bytes() as handle:
                first_line = header_end(handle)
                if first_line is None:
                    yield from self.chunks()
                    return
                for block in self._blocks(handle, first_line):
                    parsed = parse_simple_block(block, len(self.columns))
                    if parsed is None:
                        yield from self._chunks_of_block(block)
                    elif len(parsed.line_numbers):
                        columns = {
                            name: parsed.table.column(index).combine_chunks()
                            for index, name in enumerate(self.columns)
                        }
                        yield ColumnChunk(columns, parsed.line_numbers, parsed.raw_text)
        except (OSError, EOFError) as error:
            raise IngestError(f"{self.path.name}: cannot read the file: {error}") from error

    def _chunks_of_block(self, block: Block) -> Iterator[Chunk]:
        try:
            text = block.data.decode("utf-8")
        except UnicodeDecodeError as error:
            # Let the line loop meet the bad bytes, so the error reads as it always has.
            for _ in self._data_records():
                pass
            raise IngestError(f"{self.path.name}: cannot read the file: {error}") from error
        records = _records(io.StringIO(text, newline=""), block.first_line)
        yield from self._in_chunks((number, raw) for number, raw in records if raw.strip())

    def _data_records(self) -> Iterator[tuple[int, str]]:
        try:
            with self._open() as handle:
                records = _records(handle)
                for _, raw in records:
                    if raw.strip():
                        break  # the header
                for number, raw in records:
                    if raw.strip():
                        yield number, raw
        except (OSError, UnicodeDecodeError, EOFError) as error:
            raise IngestError(f"{self.path.name}: cannot read the file: {error}") from error

    def chunks(self) -> Iterator[Chunk]:
        yield from self._in_chunks(self._data_records())

    def _in_chunks(self, records: Iterable[tuple[int, str]]) -> Iterator[Chunk]:
        """``records`` (line number, raw text) cut into chunks of ``chunk_rows``."""
        numbers: list[int] = []
        raws: list[str] = []
        for number, raw in records:
            numbers.append(number)
            raws.append(raw)
            if len(raws) >= self.chunk_rows:
                yield self._chunk(numbers, raws)
                numbers, raws = [], []
        if raws:
            yield self._chunk(numbers, raws)

    def _chunk(self, numbers: list[int], raws: list[str]) -> Chunk:
        width = len(self.columns)
        text = pd.Series(raws, dtype="str")
        problems: list[str | None] = [None] * len(raws)
        simple = not text.str.contains('"', regex=False).any()
        if simple and (text.str.count(",") == width - 1).all():
            # The common case, no quoting and every row the right width: pandas' C parser.
            frame = pd.read_csv(
                io.StringIO("\n".join(raws)),
                header=None,
                names=self.columns,
                dtype="str",
                keep_default_na=False,
                skip_blank_lines=False,
            )
        else:
            frame = self._parse_slowly(raws, problems)
        frame = frame.apply(lambda column: column.str.strip())
        return Chunk(frame, np.asarray(numbers, dtype=np.int64), problems, raws)

    def _parse_slowly(self, raws: list[str], problems: list[str | None]) -> pd.DataFrame:
        width = len(self.columns)
        rows = _parse_records(raws)
        for position, row in enumerate(rows):
            if len(row) != width:
                problems[position] = f"expected {width} fields, found {len(row)}"
                rows[position] = (row + [""] * width)[:width]
        columns = list(zip(*rows, strict=True)) if rows else [()] * width
        return pd.DataFrame(
            {
                name: pd.Series(values, dtype="str")
                for name, values in zip(self.columns, columns, strict=True)
            }
        )

    def raw_lines(self, line_numbers: set[int]) -> dict[int, str]:
        """The raw text of the given lines (a second read, used only for rare cases).

        Only the blocks that hold one of the lines are read by the line loop.
        """
        wanted = np.sort(np.fromiter(line_numbers, dtype=np.int64))
        found: dict[int, str] = {}
        try:
            with self._open_bytes() as handle:
                first_line = header_end(handle)
                if first_line is None:
                    return {n: raw for n, raw in self._data_records() if n in line_numbers}
                for block in self._blocks(handle, first_line):
                    # (+ 1: the file's last line may have no line end to count)
                    after = block.first_line + block.line_count() + 1
                    if not np.any((wanted >= block.first_line) & (wanted < after)):
                        continue
                    text = block.data.decode("utf-8")  # read whole once already
                    records = _records(io.StringIO(text, newline=""), block.first_line)
                    found.update((n, raw) for n, raw in records if n in line_numbers)
        except (OSError, EOFError) as error:
            raise IngestError(f"{self.path.name}: cannot read the file: {error}") from error
        return found

    def _blocks(self, handle: BinaryIO, first_line: int) -> Iterator[Block]:
        return record_blocks(
            handle,
            first_line=first_line,
            max_lines=self.chunk_rows,
            read_size=max(self.chunk_rows * _READ_BYTES_PER_ROW, 1 << 16),
        )


class ParquetSource:
    def __init__(self, path: Path, chunk_rows: int) -> None:
        self.path = path
        self.chunk_rows = chunk_rows
        try:
            self._file = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as error:
            raise IngestError(f"{path.name}: cannot read the Parquet file: {error}") from error
        self._names = list(self._file.schema_arrow.names)
        self.columns = _normalise_header(self._names)

    def chunks(self) -> Iterator[Chunk]:
        for batch, numbers in self._batches():
            yield Chunk(self._text_frame(batch), numbers, [None] * len(numbers))

    def column_chunks(self) -> Iterator[ColumnChunk]:
        """The columns as typed in the file (no text per value: the caller converts each
        distinct value once, with ``column_text``)."""
        for batch, numbers in self._batches():
            # A column that has no text form fails the file here, as it does in ``chunks()``.
            self._text_frame(batch.slice(0, 0))

            def raw_text(positions: np.ndarray, batch: pa.RecordBatch = batch) -> list[str]:
                return _joined(self._text_frame(batch.take(pa.array(positions))))

            columns = {name: batch.column(index) for index, name in enumerate(self.columns)}
            yield ColumnChunk(columns, numbers, raw_text)

    def _batches(self) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        batches = self._file.iter_batches(batch_size=self.chunk_rows)
        first_line = 2
        while True:
            try:
                batch = next(batches, None)
            except pa.ArrowException as error:
                raise self._read_error(error) from error
            if batch is None:
                return
            numbers = np.arange(first_line, first_line + batch.num_rows, dtype=np.int64)
            first_line += batch.num_rows
            yield batch, numbers

    def _text_frame(self, batch: pa.RecordBatch) -> pd.DataFrame:
        try:
            columns = {
                name: column_text(batch.column(index)) for index, name in enumerate(self.columns)
            }
        except pa.ArrowException as error:
            raise self._read_error(error) from error
        return pd.DataFrame(columns)

    def _read_error(self, error: pa.ArrowException) -> IngestError:
        return IngestError(f"{self.path.name}: cannot read the Parquet file: {error}")

    def raw_lines(self, line_numbers: set[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        wanted = np.fromiter(line_numbers, dtype=np.int64)
        for chunk in self.chunks():
            positions = np.flatnonzero(np.isin(chunk.line_numbers, wanted))
            numbers = chunk.line_numbers[positions].tolist()
            found.update(zip(numbers, chunk.raw_text(positions), strict=True))
        return found


Source = CsvSource | ParquetSource


def _as_strings(column: pa.Array) -> pa.Array:
    # A zoned Parquet timestamp becomes "... Z"; a naive one has no offset, like naive CSV text.
    strings = pc.cast(column, pa.string()) if column.type != pa.string() else column
    return pc.fill_null(strings, "")
