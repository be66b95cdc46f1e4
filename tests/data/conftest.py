"""Factories for ingestion tests: roster rows in the database and data files on disk."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from data.db import init_db, make_engine, normalise_url
from data.tables import Household, Reading

# The ingest time of every test: Monday 6 January 2025, 09:00 in Tokyo.
NOW = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def make_household(engine) -> Callable[..., Household]:
    """Add a household (a resident living alone) to the roster."""

    def make(household_id: str = "h1", **fields) -> Household:
        fields.setdefault("name", f"Resident {household_id}")
        with Session(engine) as session:
            household = Household(id=household_id, **fields)
            session.add(household)
            session.commit()
            session.refresh(household)
            return household

    return make


@pytest.fixture
def make_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write a CSV file: a header and rows, each a sequence of fields or a raw line of text."""

    def make(name: str, header: Sequence[str], rows: Sequence[Sequence[str] | str]) -> Path:
        path = tmp_path / name
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                if isinstance(row, str):
                    handle.write(row + "\n")
                else:
                    writer.writerow(row)
        return path

    return make


@pytest.fixture
def make_readings_file(make_csv) -> Callable[..., Path]:
    def make(rows: Sequence[Sequence[str] | str], name: str = "readings.csv") -> Path:
        return make_csv(name, ["household_id", "timestamp", "kwh"], rows)

    return make


@pytest.fixture
def make_parquet(tmp_path: Path) -> Callable[[str, pd.DataFrame], Path]:
    def make(name: str, frame: pd.DataFrame) -> Path:
        path = tmp_path / name
        frame.to_parquet(path, index=False)
        return path

    return make


@pytest.fixture
def stored_readings(engine) -> Callable[[], list[tuple]]:
    """Every stored reading as (household, interval end, kwh, interval minutes), in key order."""

    def read() -> list[tuple]:
        with Session(engine) as session:
            readings = session.exec(
                select(Reading).order_by(Reading.household_id, Reading.interval_end)
            ).all()
        return [(r.household_id, r.interval_end, r.kwh, r.interval_minutes) for r in readings]

    return read


@pytest.fixture
def make_fresh_database(database, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Another fresh, migrated database on the same backend as ``database``; returns its URL."""
    cleanups: list[Callable[[], None]] = []

    def make() -> str:
        if database.backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'fresh{len(cleanups)}.db'}"
            engine = make_engine(url)
            init_db(engine)
            engine.dispose()
            cleanups.append(lambda: None)
            return url
        postgres_url = os.environ["AREAWATCH_TEST_POSTGRES_URL"]
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = make_engine(postgres_url)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))

        def drop() -> None:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

        cleanups.append(drop)
        url = f"{normalise_url(postgres_url)}?options=-csearch_path%3D{schema}"
        engine = make_engine(url)
        init_db(engine)
        engine.dispose()
        return url

    yield make
    for cleanup in cleanups:
        cleanup()
