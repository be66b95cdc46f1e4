"""The SQLModel tables and the migrated databases declare the same foreign keys.

The databases are built the way the product builds them (``init_db``: the Alembic migrations),
then read back with SQLAlchemy's inspector, so a model that promises a constraint the migrations
never made (or dropped, like ``reading``'s on PostgreSQL) shows up here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import Table, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from data.db import MIGRATIONS_DIR, make_engine
from data.tables import Reading

ForeignKey = tuple[tuple[str, ...], str, tuple[str, ...]]


def model_foreign_keys(table: Table) -> set[ForeignKey]:
    return {
        (
            tuple(column.name for column in constraint.columns),
            constraint.referred_table.name,
            tuple(element.column.name for element in constraint.elements),
        )
        for constraint in table.foreign_key_constraints
    }


def database_foreign_keys(engine: Engine, table: str) -> set[ForeignKey]:
    return {
        (
            tuple(found["constrained_columns"]),
            found["referred_table"],
            tuple(found["referred_columns"]),
        )
        for found in inspect(engine).get_foreign_keys(table)
    }


def test_reading_has_no_foreign_key_in_the_model_or_the_database(engine):
    # Readings of a household not in the roster are quarantined by ingest; the database does not
    # check it (see the Reading model and migrations 0004 and 0005).
    assert model_foreign_keys(Reading.__table__) == set()
    assert database_foreign_keys(engine, "reading") == set()


def test_every_tables_foreign_keys_match_the_migrated_database(engine):
    disagreements = {
        name: {"model": model_foreign_keys(table), "database": database_foreign_keys(engine, name)}
        for name, table in SQLModel.metadata.tables.items()
        if model_foreign_keys(table) != database_foreign_keys(engine, name)
    }

    assert disagreements == {}


def _migrate(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_sqlite_readings_stored_before_the_key_was_dropped_are_kept(tmp_path):
    # SQLite rebuilds the table to drop the key: nothing stored may be lost on the way.
    engine = make_engine(f"sqlite:///{tmp_path / 'before.db'}")
    _migrate(engine, "0004")
    end = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
    with Session(engine) as session:
        # As the schema stood at 0004 (the model has columns added since).
        session.execute(
            text(
                "INSERT INTO household (id, organisation_id, name, area, address, timezone,"
                " policy) VALUES ('h1', 'default', 'Resident h1', '', '', 'Asia/Tokyo', 'default')"
            )
        )
        session.commit()  # the model knows no key, so the session would not order the two
        session.add(Reading(household_id="h1", interval_end=end, kwh=0.25, received_at=end))
        session.commit()
    assert database_foreign_keys(engine, "reading") == {(("household_id",), "household", ("id",))}

    _migrate(engine, "head")

    assert database_foreign_keys(engine, "reading") == set()
    with Session(engine) as session:
        (kept,) = session.exec(select(Reading)).all()
    assert (kept.household_id, kept.interval_end, kept.kwh) == ("h1", end, 0.25)
    assert inspect(engine).get_pk_constraint("reading")["constrained_columns"] == [
        "household_id",
        "interval_end",
    ]
    engine.dispose()


def test_the_interval_migration_remembers_each_households_latest_stored_interval(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'intervals.db'}")
    _migrate(engine, "0006")
    with Session(engine) as session:
        for household in ("h1", "h2", "h3"):
            session.execute(
                text(
                    "INSERT INTO household (id, organisation_id, name, area, address, timezone,"
                    " policy) VALUES (:id, 'default', 'x', '', '', 'Asia/Tokyo', 'default')"
                ),
                {"id": household},
            )
        end = datetime(2025, 1, 6, tzinfo=UTC)
        # h1: hourly before, quarter-hourly latest; h2: 30 minutes (the default); h3: nothing.
        for minutes, at in [(60, end), (15, end.replace(hour=5))] + [(30, end.replace(hour=6))]:
            household = "h2" if minutes == 30 else "h1"
            session.add(
                Reading(
                    household_id=household,
                    interval_end=at,
                    kwh=0.1,
                    interval_minutes=minutes,
                    received_at=at,
                )
            )
        session.commit()

    _migrate(engine, "head")

    with engine.connect() as connection:
        remembered = dict(
            connection.execute(text("SELECT id, reading_interval_minutes FROM household")).all()
        )
    assert remembered == {"h1": 15, "h2": None, "h3": None}
    engine.dispose()
