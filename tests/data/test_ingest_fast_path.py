"""The column path (pyarrow, each distinct value checked once) against the line loop.

Whatever the file holds, an ingest must store the same readings and quarantine the same lines
(number, raw text, reason) whichever way it was read. The line loop is what ``chunks()`` gives
(``Chunk`` text, checked row by row); the column path is ``column_chunks()``.
"""

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlmodel import Session, select

from data.db import make_engine
from data.ingest import IngestError, ingest_readings
from data.ingest.keys import KnownHouseholds
from data.ingest.reading_checks import check_columns, check_text_rows
from data.ingest.source import Chunk, ColumnChunk, CsvSource, ParquetSource, open_source
from data.tables import QuarantinedRow

NOW = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
ROSTER = ["h1", "h2", "h3"]

# Every kind of row the line loop has an answer for; line numbers in the comments.
MIXED_LINES = [
    "\ufeffhousehold_id,timestamp,kwh\r\n",  # 1: a BOM, and CRLF
    "h1,2025-01-05T00:00:00Z,0.2\n",  # 2
    "\n",  # 3: empty
    "h1,2025-01-05T09:30:00+09:00,0.3\n",  # 4
    "h1 , 2025-01-05T01:00:00Z ,  0.25\n",  # 5: blanks around values
    "h1,2025-01-05T01:30:00Z,abc\n",  # 6: not a number
    "h1,2025-01-05T02:00:00Z,-0.1\n",  # 7: negative
    "h1,2025-01-05T02:30:00Z,nan\n",  # 8: NaN
    "h1,2025-01-05T03:00:00Z,1e400\n",  # 9: overflows to infinity
    "h1,2025-01-05T03:30:00Z,123456.7\n",  # 10: a number, but a meter register's size
    "nobody,2025-01-05T04:00:00Z,0.1\n",  # 11: not in the roster
    "h1,yesterday,0.1\n",  # 12
    "h1,2025-01-05T04:30:00,0.1\n",  # 13: no UTC offset
    "h1,2025-01-06T00:30:00Z,0.1\n",  # 14: in the future
    "h1,2025-01-05T05:00:00Z\n",  # 15: two fields
    "h1,2025-01-05T05:30:00Z,0.1,extra\n",  # 16: four fields
    '"h1","2025-01-05T06:00:00Z","0.4"\n',  # 17: quoted
    '"h1","2025-01-05T06:30:00Z","0.\n',  # 18: a quoted field over two lines
    '5"\n',  # 19
    "h2,2025-01-05T00:00:00Z,0.1\n",  # 20
    "h2,2025-01-05T00:17:00Z,0.1\n",  # 21: a 17-minute spacing
    "h2,2025-01-05T00:34:00Z,0.1\n",  # 22
    "h1,2025-01-05T00:00:00Z,0.2\n",  # 23: line 2 again
    "h1,2025-01-05 00:00:00.000+00:00,0.20\n",  # 24: line 2's key and kWh, written otherwise
    "h2,2025-01-05T00:00:00Z,0.9\n",  # 25: line 20's key, another kWh
    "   \n",  # 26: blanks only
    "h1,2025-01-05T07:00:00Z,\n",  # 27: kwh missing
    ",2025-01-05T07:30:00Z,0.1\n",  # 28: household missing
    "h1,,0.1\n",  # 29: timestamp missing
    "h3,2025-01-05T08:00:00Z,0.1\r\n",  # 30: CRLF
    "h3,2025-01-05T08:30:00Z,0.1\rh3,2025-01-05T09:00:00Z,0.1\n",  # 31-32: a lone CR
    "h3\t,2025-01-05T09:30:00Z,\u30000.1\u3000\n",  # 33: a tab, ideographic spaces
    "\u5bb61,2025-01-05T10:00:00Z,0.1\n",  # 34: a Japanese id, not in the roster
    "h3,2025-02-30T10:00:00Z,0.1\n",  # 35: no such day
    "h3,2025-01-05T10:30:00+0900,1\n",  # 36
    "h3,2025-01-05T11:00:00Z,0.1",  # 37: no newline at the end
]


def write_bytes(tmp_path, name: str, lines: list[str]):
    path = tmp_path / name
    path.write_bytes("".join(lines).encode("utf-8"))
    return path


def line_loop(monkeypatch) -> None:
    """Make ``ingest_readings`` read every file the old way: text chunks, checked row by row."""
    monkeypatch.setattr(CsvSource, "column_chunks", CsvSource.chunks)
    monkeypatch.setattr(ParquetSource, "column_chunks", ParquetSource.chunks)


def checked_rows(chunks, tz: str | None = None) -> tuple[dict[int, tuple], set[type]]:
    """Per line number: (reason, raw text) of a bad row, (code, end, kwh) of a good one."""
    known = KnownHouseholds(pd.Index(sorted(ROSTER), dtype=object))
    zone = None if tz is None else ZoneInfo(tz)
    rows: dict[int, tuple] = {}
    kinds = set()
    for chunk in chunks:
        kinds.add(type(chunk))
        check = check_columns if isinstance(chunk, ColumnChunk) else check_text_rows
        checked = check(chunk, known, zone, NOW)
        bad = np.flatnonzero(~checked.reasons.ok)
        for position, raw in zip(bad.tolist(), chunk.raw_text(bad), strict=True):
            rows[int(chunk.line_numbers[position])] = (checked.reasons.values[position], raw)
        for position in np.flatnonzero(checked.reasons.ok).tolist():
            rows[int(chunk.line_numbers[position])] = (
                int(checked.codes[position]),
                checked.ends[position],
                float(checked.kwh[position]),
            )
    return rows, kinds


def both_ways(path, chunk_rows: int, tz: str | None = None) -> tuple[tuple, tuple]:
    """``checked_rows`` by the line loop, then by columns."""
    slow = checked_rows(open_source(path, chunk_rows=chunk_rows).chunks(), tz)
    fast = checked_rows(open_source(path, chunk_rows=chunk_rows).column_chunks(), tz)
    return slow, fast


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 7, 100_000])
def test_a_mixed_file_is_checked_by_columns_exactly_as_by_the_line_loop(tmp_path, chunk_rows):
    path = write_bytes(tmp_path, "mixed.csv", MIXED_LINES)
    (slow, slow_kinds), (fast, fast_kinds) = both_ways(path, chunk_rows)

    assert fast == slow
    assert slow_kinds == {Chunk}
    # Cut into blocks, the simple ones take the column path; as one block, the file is not simple.
    assert (ColumnChunk in fast_kinds) == (chunk_rows < len(MIXED_LINES))
    assert "not a number" in slow[9][0]
    assert slow[10] == (
        "implausible energy: kwh 123456.7 is above 100 for one reading"
        " (a cumulative meter register instead of the interval's use?)",
        "h1,2025-01-05T03:30:00Z,123456.7",
    )
    assert slow[18] == ("kwh '0.\\n5' is not a number", '"h1","2025-01-05T06:30:00Z","0.\n5"')
    assert slow[31][0] == ROSTER.index("h3") and slow[32][0] == ROSTER.index("h3")
    assert sorted(slow)[-1] == 37 and 3 not in slow and 26 not in slow


def test_naive_local_times_are_checked_by_columns_as_by_the_line_loop(tmp_path):
    lines = ["household_id,timestamp,kwh\n"] + [
        f"h1,{stamp},0.1\n"
        for stamp in (
            "2025-03-09T02:30:00",  # does not exist in New York
            "2025-11-02T01:30:00",  # happens twice there
            "2025-01-05T01:00:00",
            "2025-01-05T01:30:00-05:00",
        )
    ]
    path = write_bytes(tmp_path, "local.csv", lines)
    for tz in (None, "America/New_York"):
        (slow, _), (fast, _) = both_ways(path, 2, tz)
        assert fast == slow


@pytest.mark.parametrize("seed", range(6))
def test_random_files_are_checked_by_columns_exactly_as_by_the_line_loop(tmp_path, seed):
    rng = random.Random(seed)
    households = [
        "h1", "h2", "h3", " h2", "nobody", "", '"h1"', "h\u00e93", '"h1" ', ' "h2"', '"h""1"',
        '"h,1"', 'h"1', '""',
    ]  # fmt: skip
    stamps = [
        "2025-01-05T00:00:00Z", "2025-01-05T00:30:00Z", "2025-01-05 01:00:00+00:00",
        "2025-01-05T10:00:00+09:00", "2025-01-05T01:30:00.5Z", "2025-01-05T02:00", "bad",
        "2025-01-07T00:00:00Z", "", " 2025-01-05T02:30:00Z ", '"2025-01-05T03:00:00Z"',
    ]  # fmt: skip
    energies = [
        "0.1", "0.25", "1", "-1", "nan", "inf", "", "x", " 0.5", "1e3", "0.1000000000000000055",
        '"0.5"', '"-0.5"',
    ]  # fmt: skip
    lines = ["household_id,timestamp,kwh\n"]
    for _ in range(300):
        roll = rng.random()
        if roll < 0.03:
            lines.append(rng.choice(["\n", "  \n", "\r\n", "h1,2025-01-05T00:00:00Z\n"]))
            continue
        fields = [rng.choice(households), rng.choice(stamps), rng.choice(energies)]
        if roll < 0.05:
            fields.append("extra")
        lines.append(",".join(fields) + rng.choice(["\n", "\n", "\n", "\r\n"]))
    path = write_bytes(tmp_path, "random.csv", lines)
    for chunk_rows in (5, 40, 1000):
        (slow, _), (fast, _) = both_ways(path, chunk_rows)
        assert fast == slow


@pytest.mark.parametrize("quote", ["", '"'])
def test_a_simple_file_is_read_by_columns_only(tmp_path, quote):
    """Plain fields, or strings in quotes as pandas and pyarrow write them."""
    lines = [f"{quote}household_id{quote},timestamp,kwh\n"] + [
        f"{quote}h{i % 3 + 1}{quote},2025-01-05T{i // 2:02d}:{30 * (i % 2):02d}:00Z,0.{i}\r\n"
        for i in range(40)
    ]
    source = open_source(write_bytes(tmp_path, "simple.csv", lines), chunk_rows=7)
    chunks = list(source.column_chunks())
    assert {type(chunk) for chunk in chunks} == {ColumnChunk}
    assert np.concatenate([c.line_numbers for c in chunks]).tolist() == list(range(2, 42))
    assert chunks[1].raw_text(np.array([0])) == [f"{quote}h2{quote},2025-01-05T03:30:00Z,0.7"]
    assert chunks[1].columns["household_id"].to_pylist()[0] == "h2"


def test_a_parquet_file_is_checked_by_typed_columns_exactly_as_by_its_text(tmp_path):
    ends = pd.to_datetime(
        ["2025-01-05T00:00:00Z", "2025-01-05T00:30:00Z", "2025-01-07T00:00:00Z", None] * 3,
        utc=True,
    ).as_unit("ns")
    table = pa.table(
        {
            "Household_ID": pa.array(["h1", "h2", "nobody", None] * 3).dictionary_encode(),
            "timestamp": pa.array(ends),
            "kwh": pa.array([0.5, float("nan"), -0.0, None, -1.0, 0.25] * 2),
            "note": pa.array(["a", None, "b", "c"] * 3),
        }
    )
    path = tmp_path / "typed.parquet"
    pq.write_table(table, path)
    for chunk_rows in (5, 100):
        (slow, _), (fast, _) = both_ways(path, chunk_rows)
        assert fast == slow
    assert slow[2] == (0, np.datetime64("2025-01-05T00:00:00", "us"), 0.5)
    assert slow[3][1] == "h2,2025-01-05 00:30:00.000000000Z,nan,"


# -- whole ingests, on SQLite and PostgreSQL -------------------------------------------------------
def stored(engine) -> tuple[list[tuple], list[tuple]]:
    from data.tables import Reading

    with Session(engine) as session:
        readings = session.exec(
            select(Reading).order_by(Reading.household_id, Reading.interval_end)
        ).all()
        quarantine = session.exec(select(QuarantinedRow)).all()
    return (
        [(r.household_id, r.interval_end, r.kwh, r.interval_minutes) for r in readings],
        sorted((q.line_number, q.raw, q.reason) for q in quarantine),
    )


def counts(report) -> tuple:
    return (
        report.rows_read, report.rows_inserted, report.rows_unchanged, report.rows_corrected,
        report.rows_quarantined, report.households,
    )  # fmt: skip


@pytest.mark.parametrize("chunk_rows", [3, 100_000])
def test_a_mixed_file_ingests_the_same_by_columns_and_by_the_line_loop(
    engine, make_household, make_fresh_database, tmp_path, monkeypatch, chunk_rows
):
    path = write_bytes(tmp_path, "mixed.csv", MIXED_LINES)
    old_engine = make_engine(make_fresh_database())
    for household_id in ROSTER:
        make_household(household_id)
    with Session(old_engine) as session:
        from data.tables import Household

        session.add_all(Household(id=h, name=f"Resident {h}") for h in ROSTER)
        session.commit()

    fast = ingest_readings(engine=engine, path=path, now=NOW, chunk_rows=chunk_rows)
    with monkeypatch.context() as patch:
        line_loop(patch)
        slow = ingest_readings(engine=old_engine, path=path, now=NOW, chunk_rows=chunk_rows)
    fast_stored, slow_stored = stored(engine), stored(old_engine)
    old_engine.dispose()

    assert counts(fast) == counts(slow)
    assert fast_stored == slow_stored
    readings, quarantine = fast_stored
    assert [line for line, _, _ in quarantine] == [
        6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 25, 27, 28, 29, 34, 35,
    ]  # fmt: skip
    assert (fast.rows_read, fast.rows_inserted, fast.rows_unchanged) == (33, 12, 2)
    # h2's only spacing left (17 minutes) is no accepted interval: the 30-minute default stands.
    assert {r[0]: r[3] for r in readings} == {"h1": 30, "h2": 30, "h3": 30}


@pytest.mark.parametrize("chunk_rows", [2, 5, 100_000])
def test_raw_lines_found_by_blocks_are_those_of_the_line_loop(tmp_path, chunk_rows):
    source = open_source(write_bytes(tmp_path, "mixed.csv", MIXED_LINES), chunk_rows=chunk_rows)
    every_line = dict(source._data_records())
    wanted = {2, 18, 19, 25, 31, 32, 37, 99}

    assert source.raw_lines(wanted) == {n: every_line[n] for n in wanted if n in every_line}
    assert source.raw_lines({18})[18] == '"h1","2025-01-05T06:30:00Z","0.\n5"'


def test_bytes_that_are_not_utf8_fail_the_file_with_the_line_loops_message(tmp_path):
    path = tmp_path / "broken.csv"
    good = "".join(f"h1,2025-01-05T00:{i:02d}:00Z,0.1\n" for i in range(30)).encode()
    path.write_bytes(b"household_id,timestamp,kwh\n" + good + b"h1,\xff\xfe,0.1\n" + good)

    with pytest.raises(IngestError) as by_lines:
        list(open_source(path, chunk_rows=4).chunks())
    with pytest.raises(IngestError) as by_columns:
        list(open_source(path, chunk_rows=4).column_chunks())
    assert str(by_columns.value) == str(by_lines.value)
    assert "cannot read the file" in str(by_lines.value)
