"""A drop folder: a utility or cable operator copies files in; we load each complete one once.

Lifecycle of a file: it appears (hidden, ``.part`` or ``.tmp`` names are still being written and
are ignored), settles (not modified for ``settle_seconds`` by the file system's own clock), is
ingested with the idempotent ingest functions, and only after that ingest committed is it moved
to ``archive/<date>/`` or, when nothing in it could be loaded, to ``rejected/`` beside a
``<name>.report.txt`` that says why. A crash between the ingest and the move leaves the file in
place; the next pull ingests it again (every row comes back "unchanged") and moves it. Two pulls
of the same folder at once (an overlapping cron run) are kept apart by a lock file: the second
one does nothing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from data.ingest import IngestError, IngestReport, ingest_readings, ingest_tv
from data.sources.base import PullReport, record_error, record_progress

logger = logging.getLogger(__name__)

SUFFIXES = (".csv", ".csv.gz", ".parquet")
IN_PROGRESS_SUFFIXES = (".part", ".tmp")
LOCK_NAME = ".areawatch.lock"
REPORTED_REASONS = 50

_INGESTERS: dict[str, Callable[..., IngestReport]] = {
    "readings": ingest_readings,
    "tv": ingest_tv,
}


@dataclass
class DropFolderSource:
    """Files of one kind (``readings`` or ``tv``) dropped into ``folder``.

    Parameters
    ----------
    name : str
        The source's name: the key of its cursor and how status shows it.
    kind : str
        ``readings`` or ``tv``: which ingest function reads the files.
    folder : Path
        The drop folder; ``archive`` and ``rejected`` are subfolders of it.
    settle_seconds : float
        A file modified less than this long ago, by the file system's clock, may still be being
        written.
    tz : str, optional
        Zone for timestamps without an offset (passed to the ingest).
    archive_zone : str
        Zone of the date subfolder of ``archive``.
    """

    name: str
    kind: str
    folder: Path
    settle_seconds: float = 10
    archive: str = "archive"
    rejected: str = "rejected"
    tz: str | None = None
    archive_zone: str = "Asia/Tokyo"

    def __post_init__(self) -> None:
        if self.kind not in _INGESTERS:
            raise ValueError(f"a drop folder holds 'readings' or 'tv', not {self.kind!r}")
        self.folder = Path(self.folder)

    def pull(self, *, engine: Engine, now: datetime) -> PullReport:
        """Ingest every complete file, oldest first; report what was loaded, rejected, left."""
        report = PullReport(source=self.name)
        try:
            with self._lock() as locked:
                if not locked:
                    report.busy = True
                    return report
                for path in self.pending(report):
                    self._take(engine, path, now, report)
        except (OSError, SQLAlchemyError) as error:
            # The folder or the database is unavailable: files stay put for the next pull.
            report.error = f"{type(error).__name__}: {error}"
            logger.warning("source %s: pull failed: %s", self.name, report.error)
            _try_record_error(engine, self.name, report.error, now)
            return report
        record_progress(engine, source=self.name, cursor=None, now=now)
        return report

    def pending(self, report: PullReport | None = None) -> list[Path]:
        """The complete files waiting in the folder, oldest first (settling ones are noted).

        A file's age is its modification time measured against the file system's present, not
        against the application's ``now``: that clock is business time and may stand years in
        the past (``AREAWATCH_NOW`` replays a week) or run ahead, while every mtime is written by
        the file system's clock (the server's, on a network share). Compared with business time,
        a replay would see every file as coming from the future and never load it, and a clock
        set ahead would load a file that is still being written. Remembering each file between
        two looks would need state kept across pulls (``areawatch pull`` is a new process each
        time from cron), so the file system is asked for its present instead.
        """
        ready: list[tuple[float, str, Path]] = []
        present = _file_system_now(self.folder)
        for path in self.folder.iterdir():
            if not _looks_like_data(path.name):
                continue
            try:
                status = path.stat()
            except FileNotFoundError:
                continue  # moved away by an overlapping pull a moment ago
            if not stat.S_ISREG(status.st_mode):
                continue
            modified = status.st_mtime
            age = present - modified
            if age < self.settle_seconds:
                if report is not None:
                    report.files_waiting.append(path.name)
                continue
            ready.append((modified, path.name, path))
        return [path for _, _, path in sorted(ready)]

    def _take(self, engine: Engine, path: Path, now: datetime, report: PullReport) -> None:
        ingest = _INGESTERS[self.kind]
        try:
            result = ingest(engine=engine, path=path, now=now, tz=self.tz)
        except IngestError as error:
            self._reject(engine, path, now, report, [str(error)])
            return
        report.rows_inserted += result.rows_inserted
        report.rows_corrected += result.rows_corrected
        report.rows_quarantined += result.rows_quarantined
        if result.nothing_read:
            reasons = [f"line {line.line_number}: {line.reason}" for line in result.quarantined]
            self._reject(engine, path, now, report, ["no row could be loaded", *reasons])
            return
        target = self._move(path, self.folder / self.archive / self._day(now))
        if target is not None:
            report.files_loaded.append(path.name)
            record_progress(engine, source=self.name, cursor=path.name, now=now)
            logger.info("source %s: loaded %s", self.name, path.name)

    def _reject(
        self, engine: Engine, path: Path, now: datetime, report: PullReport, reasons: list[str]
    ) -> None:
        folder = self.folder / self.rejected
        target = self._move(path, folder)
        if target is None:
            return
        lines = [f"{path.name} rejected at {now.isoformat()}", *reasons[:REPORTED_REASONS]]
        report_path = target.with_name(target.name + ".report.txt")
        report_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        report.files_rejected.append(path.name)
        record_error(engine, source=self.name, error=f"rejected {path.name}: {reasons[0]}", now=now)
        record_progress(engine, source=self.name, cursor=path.name, now=now)
        logger.warning("source %s: rejected %s: %s", self.name, path.name, reasons[0])

    def _move(self, path: Path, folder: Path) -> Path | None:
        """Move ``path`` into ``folder`` without overwriting; None if it is already gone."""
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder / path.name)
        try:
            os.replace(path, target)
        except FileNotFoundError:
            return None  # another pull moved it first; its data is loaded either way
        return target

    def _day(self, now: datetime) -> str:
        return now.astimezone(ZoneInfo(self.archive_zone)).date().isoformat()

    @contextmanager
    def _lock(self) -> Iterator[bool]:
        with open(self.folder / LOCK_NAME, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _file_system_now(folder: Path) -> float:
    """The present on ``folder``'s file system clock: the mtime it gives the lock file touched now.

    ``utime`` with no times asks the file system to stamp its own present (on NFS, the server's),
    the same clock that stamps the data files, so their ages are not skewed by another host's.
    """
    with open(folder / LOCK_NAME, "a") as handle:
        os.utime(handle.fileno())
        return os.fstat(handle.fileno()).st_mtime


def _looks_like_data(name: str) -> bool:
    lower = name.lower()
    if name.startswith(".") or lower.endswith(IN_PROGRESS_SUFFIXES):
        return False
    return lower.endswith(SUFFIXES)


def _free_name(target: Path) -> Path:
    # A file re-delivered under the same name keeps both copies in the archive.
    if not target.exists():
        return target
    stem, suffix = _split_suffix(target.name)
    for number in range(1, 10_000):
        candidate = target.with_name(f"{stem}-{number}{suffix}")
        if not candidate.exists():
            return candidate
    raise OSError(f"too many files named {target.name} in {target.parent}")


def _split_suffix(name: str) -> tuple[str, str]:
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return name, ""


def _try_record_error(engine: Engine, source: str, error: str, now: datetime) -> None:
    try:
        record_error(engine, source=source, error=error, now=now)
    except SQLAlchemyError:
        logger.warning("source %s: could not record the error either", source)
