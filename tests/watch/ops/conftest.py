"""Fixtures for operations: a drop folder, files written into it like a utility's, residents."""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from data.tables import Household, Reading

# Every pull in these tests happens at Monday 6 January 2025, 09:00 in Tokyo.
NOW = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
READINGS_HEADER = ("household_id", "timestamp", "kwh")


def reading_rows(household_id: str, count: int, end: datetime = NOW) -> list[tuple[str, ...]]:
    """``count`` half-hourly readings of one household, the last one ending at ``end``."""
    return [
        (household_id, (end - timedelta(minutes=30 * i)).isoformat(), f"{0.1 + i / 100:.2f}")
        for i in range(count)
    ]


def count_readings(engine) -> int:  # noqa: ANN001
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Reading)).one()


@pytest.fixture
def make_resident(engine) -> Callable[[str], Household]:
    """A resident living alone, on the roster."""

    def make(household_id: str = "h1") -> Household:
        with Session(engine) as session:
            household = Household(id=household_id, name=f"Resident {household_id}")
            session.add(household)
            session.commit()
            session.refresh(household)
            return household

    return make


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


@pytest.fixture
def write_file(drop: Path) -> Callable[..., Path]:
    """Write a data file into the drop folder, last modified ``age`` ago (file system time)."""

    def write(
        name: str,
        rows: Sequence[Sequence[str]],
        header: Sequence[str] = READINGS_HEADER,
        age: timedelta = timedelta(minutes=5),
        folder: Path | None = None,
    ) -> Path:
        path = (folder or drop) / name
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        set_age(path, age)
        return path

    return write


def set_age(path: Path, age: timedelta) -> None:
    """Make ``path`` look last modified ``age`` ago on the file system's own clock.

    The drop folder measures settling on that clock, not on the application's ``NOW``, so the
    file is touched first (the file system stamps its present) and then set back by ``age``.
    """
    os.utime(path)
    stamp = path.stat().st_mtime - age.total_seconds()
    os.utime(path, (stamp, stamp))
