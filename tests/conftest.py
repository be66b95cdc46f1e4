"""Shared fixtures: a fresh database per test, on SQLite and (for real) on PostgreSQL.

PostgreSQL tests run when ``AREAWATCH_TEST_POSTGRES_URL`` is set. Each test gets its own schema,
so tests never share or wipe each other's data. With ``AREAWATCH_REQUIRE_POSTGRES=1`` (as in CI) a
missing server is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from data.db import init_db, make_engine, normalise_url
from watch.clock import FrozenClock

POSTGRES_URL = os.environ.get("AREAWATCH_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("AREAWATCH_REQUIRE_POSTGRES") == "1"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _postgres_unavailable_reason() -> str | None:
    if not POSTGRES_URL:
        return "AREAWATCH_TEST_POSTGRES_URL is not set; PostgreSQL tests skipped"
    try:
        engine = make_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as error:  # noqa: BLE001  (any failure means: no usable server)
        return f"PostgreSQL at AREAWATCH_TEST_POSTGRES_URL is unreachable: {error}"
    return None


_PG_REASON: str | None = None
_PG_CHECKED = False


def _postgres_skip_or_fail() -> None:
    global _PG_REASON, _PG_CHECKED
    if not _PG_CHECKED:
        _PG_REASON = _postgres_unavailable_reason()
        _PG_CHECKED = True
    if _PG_REASON:
        if REQUIRE_POSTGRES:
            pytest.fail(f"AREAWATCH_REQUIRE_POSTGRES=1 but {_PG_REASON}")
        pytest.skip(_PG_REASON)


class TestDatabase:
    """A fresh database for one test: its URL (for subprocesses) and an engine."""

    def __init__(self, url: str, backend: str) -> None:
        self.url = url
        self.backend = backend
        self.engine: Engine = make_engine(url)


def _sqlite_database(tmp_path: Path) -> Iterator[TestDatabase]:
    db = TestDatabase(f"sqlite:///{tmp_path / 'areawatch.db'}", "sqlite")
    init_db(db.engine)
    yield db
    db.engine.dispose()


def _postgres_database() -> Iterator[TestDatabase]:
    _postgres_skip_or_fail()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    base = normalise_url(POSTGRES_URL)
    separator = "&" if "?" in base else "?"
    db = TestDatabase(f"{base}{separator}options=-csearch_path%3D{schema}", "postgres")
    try:
        init_db(db.engine)
        yield db
    finally:
        db.engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path: Path) -> Iterator[TestDatabase]:
    """A fresh, migrated database; the test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield from _sqlite_database(tmp_path)
    else:
        yield from _postgres_database()


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[TestDatabase]:
    yield from _sqlite_database(tmp_path)


@pytest.fixture
def engine(database: TestDatabase) -> Engine:
    return database.engine


@pytest.fixture
def clock() -> FrozenClock:
    """Monday 6 January 2025, 09:00 in Tokyo."""
    return FrozenClock(datetime(2025, 1, 6, 0, 0, tzinfo=UTC))
