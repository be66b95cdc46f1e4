"""One ingest run: its ``Ingest`` row, its quarantined lines, and its report."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert, update
from sqlalchemy.engine import Engine

from data.ingest.parse import Reasons
from data.ingest.report import REPORTED_LINES, IngestError, IngestReport, QuarantinedLine
from data.ingest.source import Chunk, ColumnChunk
from data.tables import Ingest, QuarantinedRow

logger = logging.getLogger(__name__)

_INGEST = Ingest.__table__
_QUARANTINE = QuarantinedRow.__table__


def as_utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: pass an aware 'now'")
    return now.astimezone(UTC)


class IngestRun:
    """Counts and quarantine of one file; ``report`` is what the caller gets back."""

    def __init__(self, engine: Engine, report: IngestReport) -> None:
        self.engine = engine
        self.report = report

    def quarantine(self, line_numbers: list[int], raws: list[str], reasons: list[str]) -> None:
        """Record rejected lines (in their own transaction) and count them."""
        if not line_numbers:
            return
        rows = [
            {
                "ingest_id": self.report.ingest_id,
                "line_number": number,
                "raw": raw,
                "reason": reason[:400],
            }
            for number, raw, reason in zip(line_numbers, raws, reasons, strict=True)
        ]
        with self.engine.begin() as connection:
            connection.execute(insert(_QUARANTINE), rows)
        self.report.rows_quarantined += len(rows)
        room = REPORTED_LINES - len(self.report.quarantined)
        for number, reason in list(zip(line_numbers, reasons, strict=True))[: max(room, 0)]:
            self.report.quarantined.append(QuarantinedLine(number, reason))

    def quarantine_chunk(self, chunk: Chunk | ColumnChunk, reasons: Reasons) -> np.ndarray:
        """Quarantine the chunk's rows that have a reason; return the mask of good rows."""
        good = reasons.ok
        bad = np.flatnonzero(~good)
        self.quarantine(
            chunk.line_numbers[bad].tolist(), chunk.raw_text(bad), reasons.values[bad].tolist()
        )
        return good


@contextmanager
def ingest_run(
    *, engine: Engine, kind: str, path: str | Path, now: datetime
) -> Iterator[IngestRun]:
    """Write the ``Ingest`` row first, then finish it with the counts when the file is done.

    A whole-file error (missing column, unreadable file) is recorded as a quarantined line 1 and
    the run finished before the error reaches the caller. A run cut short by a crash keeps
    ``finished_at`` empty: the mark of an ingest to re-run.
    """
    source = str(path)
    with engine.begin() as connection:
        ingest_id = connection.execute(
            insert(_INGEST).values(kind=kind, source=source[-400:], started_at=now)
        ).inserted_primary_key[0]
    run = IngestRun(engine, IngestReport(ingest_id=ingest_id, kind=kind, source=source))
    try:
        yield run
    except IngestError as error:
        run.quarantine([1], [""], [str(error)])
        _finish(engine, run.report, now)
        raise
    _finish(engine, run.report, now)
    report = run.report
    logger.info(
        "ingest %s (%s): read %d, inserted %d, unchanged %d, corrected %d, quarantined %d",
        report.ingest_id, kind, report.rows_read, report.rows_inserted, report.rows_unchanged,
        report.rows_corrected, report.rows_quarantined,
    )  # fmt: skip


def _finish(engine: Engine, report: IngestReport, now: datetime) -> None:
    report.quarantined.sort()
    with engine.begin() as connection:
        connection.execute(
            update(_INGEST)
            .where(_INGEST.c.id == report.ingest_id)
            .values(
                finished_at=now,
                rows_read=report.rows_read,
                rows_inserted=report.rows_inserted,
                rows_unchanged=report.rows_unchanged,
                rows_corrected=report.rows_corrected,
                rows_quarantined=report.rows_quarantined,
            )
        )
