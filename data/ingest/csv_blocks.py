"""A CSV file cut into blocks of whole records; the simple blocks parsed by pyarrow.

The line loop (``data.ingest.source``) costs about 3.5 CPU-s per million rows, most of a first
load. pyarrow's C++ parser splits a block in milliseconds, but it numbers no lines and keeps no
raw text, and it differs from the line loop on quoting corner cases. So it gets a block only when
the block's bytes guarantee the two split it the same way:

- no control character other than tab, LF and the CR of a CRLF: every LF ends a line, and no
  other byte does (Python's universal newlines would also end one at a lone CR);
- quotes only around whole fields: each line holds an even number of them, every opening one
  starts a field (at the line's start or after a comma) and every closing one ends it (before a
  comma or the line's end). pandas and pyarrow write quoted strings so. Then every line is one
  record, the csv module and pyarrow both take the text between the quotes as the value, and a
  record's line number and raw text follow from the positions of the LFs.

Any other block is read by the line loop.

Blocks are cut only after an LF where the number of quote characters since the start of the
data is even: exactly where the line loop ends a record. A quoted field spanning lines therefore
never straddles two blocks, and the line loop can read any block on its own, with the line
numbers it would have given it reading the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

_TAB, _LF, _CR, _QUOTE, _COMMA = 9, 10, 13, 34, 44
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Block:
    """Whole records of the file (ending after an LF, except at the end of the file)."""

    data: bytes
    first_line: int  # 1-based number of the block's first line in the file

    def line_count(self) -> int:
        """Lines as Python's universal newlines count them: an LF or a lone CR ends one."""
        view = np.frombuffer(self.data, dtype=np.uint8)
        returns = np.flatnonzero(view == _CR)
        followed_by_lf = returns + 1 < len(view)
        followed_by_lf[followed_by_lf] = view[returns[followed_by_lf] + 1] == _LF
        return int(np.count_nonzero(view == _LF)) + int(np.count_nonzero(~followed_by_lf))


@dataclass(frozen=True)
class ParsedBlock:
    """A simple block's records: string columns as written, line numbers, text spans."""

    table: pa.Table
    line_numbers: np.ndarray
    starts: np.ndarray  # byte offset of each record in the block
    stops: np.ndarray  # byte offset just past its text (before the CR/LF)
    data: bytes

    def raw_text(self, positions: np.ndarray) -> list[str]:
        return [
            self.data[start:stop].decode("utf-8")
            for start, stop in zip(
                self.starts[positions].tolist(), self.stops[positions].tolist(), strict=True
            )
        ]


def header_end(handle: BinaryIO) -> int | None:
    """Read past the header (the first non-blank line); return the next line's number.

    ``None`` when the lines up to the header are not simple (a quoted field over several lines,
    a lone CR, bytes that are not UTF-8): the caller then reads the whole file with the line loop.
    """
    number = 0
    while line := handle.readline():
        number += 1
        if number == 1 and line.startswith(BOM):
            line = line[len(BOM) :]
        body = line[:-2] if line.endswith(b"\r\n") else line.rstrip(b"\n")
        if line.count(b'"') % 2 or b"\r" in body:
            return None  # a record over several lines, or a lone CR
        try:
            if line.decode("utf-8").strip():
                return number + 1
        except UnicodeDecodeError:
            return None
    return None


def record_blocks(
    handle: BinaryIO, *, first_line: int, max_lines: int, read_size: int
) -> Iterator[Block]:
    """The rest of ``handle`` in blocks of at most ``max_lines`` LFs, each cut at a record's end."""
    pending = b""
    line = first_line
    while True:
        data = handle.read(read_size)
        if not data:
            if pending:
                yield Block(pending, line)
            return
        buffer = pending + data if pending else data
        view = np.frombuffer(buffer, dtype=np.uint8)
        ends = np.flatnonzero(view == _LF)
        quotes = np.flatnonzero(view == _QUOTE)
        if len(quotes):
            ends = ends[np.searchsorted(quotes, ends) % 2 == 0]  # outside any quoted field
        start = 0
        for stop in (ends[max_lines - 1 :: max_lines] + 1).tolist():
            block = Block(buffer[start:stop], line)
            yield block
            line += block.line_count()
            start = stop
        pending = buffer[start:]


def parse_simple_block(block: Block, width: int) -> ParsedBlock | None:
    """Parse ``block`` into ``width`` string columns, or ``None`` if it is not simple.

    Empty lines are skipped, as the line loop skips them. A line of blanks only would be skipped
    by the line loop too, but read by pyarrow as a row of one field: with ``width`` > 1 that is a
    wrong field count, which makes the block not simple (so ``width`` 1 never is).
    """
    if width < 2:
        return None
    data = block.data
    view = np.frombuffer(data, dtype=np.uint8)
    controls = np.flatnonzero(view < 0x20)
    kinds = view[controls]
    if not np.isin(kinds, (_TAB, _LF, _CR)).all():
        return None
    returns = controls[kinds == _CR]
    if len(returns) and (returns[-1] + 1 >= len(view) or (view[returns + 1] != _LF).any()):
        return None  # a lone CR: a line break to Python, not to a simple split on LF
    line_feeds = controls[kinds == _LF]
    if not _quotes_around_whole_fields(view, line_feeds):
        return None
    starts = np.concatenate(([0], line_feeds + 1))
    stops = np.concatenate((line_feeds, [len(view)]))
    if starts[-1] == len(view):  # the block ends with its LF: no line after it
        starts, stops = starts[:-1], stops[:-1]
    crlf = np.zeros(len(stops), dtype=bool)
    has_text = stops > starts
    crlf[has_text] = view[stops[has_text] - 1] == _CR
    stops = stops - crlf
    kept = stops > starts
    try:
        table = pcsv.read_csv(
            pa.py_buffer(data),
            read_options=pcsv.ReadOptions(
                column_names=[f"f{i}" for i in range(width)],
                use_threads=False,
                block_size=len(data) + 1,
            ),
            parse_options=pcsv.ParseOptions(ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None  # a wrong field count, or bytes that are not UTF-8
    if table.num_rows != np.count_nonzero(kept):
        return None
    numbers = np.flatnonzero(kept).astype(np.int64) + block.first_line
    return ParsedBlock(table, numbers, starts[kept], stops[kept], data)


def _quotes_around_whole_fields(view: np.ndarray, line_feeds: np.ndarray) -> bool:
    quotes = np.flatnonzero(view == _QUOTE)
    if not len(quotes):
        return True
    if len(quotes) % 2 or (np.searchsorted(quotes, line_feeds) % 2).any():
        return False  # a quoted field runs over a line's end
    # With an even count per line, quotes pair up in order: (opening, closing).
    opening, closing = quotes[0::2], quotes[1::2]
    before = view[opening[opening > 0] - 1]
    after = view[closing[closing + 1 < len(view)] + 1]
    return bool(np.isin(before, (_COMMA, _LF)).all() and np.isin(after, (_COMMA, _LF, _CR)).all())
