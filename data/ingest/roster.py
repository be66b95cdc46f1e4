"""The roster: ``households.csv`` and ``contacts.csv``, upserted by key.

Roster files are small (thousands of rows), so the good rows of a file are held in one frame
before they are written; rows are still read and checked chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.dml import Insert
from sqlmodel import SQLModel

from data.ingest.keys import KnownHouseholds, find_duplicates
from data.ingest.parse import Reasons
from data.ingest.report import IngestReport
from data.ingest.run import IngestRun, as_utc, ingest_run
from data.ingest.source import DEFAULT_CHUNK_ROWS, Chunk, Source, open_source, require_columns
from data.ingest.zones import is_zone
from data.tables import Contact, ContactRole, Household, Organisation

DEFAULT_ORGANISATION = "default"
DEFAULT_TIMEZONE = "Asia/Tokyo"
LANGUAGES = ("ja", "en")
E164 = r"^\+[1-9]\d{6,14}$"
_CLOCK_TIME = r"^(?:[01]\d|2[0-3]):[0-5]\d$"
# Loose on purpose: one "@", something either side, no spaces. The mail server is the judge.
_EMAIL = r"^[^@\s]+@[^@\s]+$"
MAX_EMAIL = 254
_HOUSEHOLD_FIELDS = (
    "organisation_id",
    "name",
    "area",
    "address",
    "lat",
    "lon",
    "timezone",
    "policy",
)
_CONTACT_FIELDS = ("name", "email", "language", "quiet_start", "quiet_end", "priority")
# (column in the table, column in the file, longest value the table holds)
_HOUSEHOLD_LIMITS = (
    ("id", "household_id", 64),
    ("organisation_id", "organisation", 64),
    ("name", "name", 200),
    ("area", "area", 100),
    ("address", "address", 400),
    ("policy", "policy", 64),
)
MAX_PRIORITY = 1000


def ingest_households(
    *, engine: Engine, path: str | Path, now: datetime, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> IngestReport:
    """Upsert households by id (creating any organisation named that does not exist yet)."""
    now = as_utc(now)
    with ingest_run(engine=engine, kind="households", path=path, now=now) as run:
        source = open_source(path, chunk_rows=chunk_rows)
        require_columns(source, ("household_id", "name"))
        rows = _good_rows(run, source, _check_household)
        rows = _without_duplicates(run, source, rows, ["id"])
        existing = _existing(engine, Household, ["id"], _HOUSEHOLD_FIELDS)
        with engine.begin() as connection:
            _create_organisations(connection, rows["organisation_id"].unique().tolist())
            _upsert(run, connection, Household, rows, ["id"], _HOUSEHOLD_FIELDS, existing)
    return run.report


def ingest_contacts(
    *, engine: Engine, path: str | Path, now: datetime, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> IngestReport:
    """Upsert contacts by (household, role, phone); a volunteer may serve many households."""
    now = as_utc(now)
    with ingest_run(engine=engine, kind="contacts", path=path, now=now) as run:
        source = open_source(path, chunk_rows=chunk_rows)
        require_columns(source, ("household_id", "name", "role", "phone"))
        known = KnownHouseholds.load(engine)
        rows = _good_rows(run, source, lambda chunk, reasons: _check_contact(chunk, reasons, known))
        keys = ["household_id", "role", "phone"]
        rows = _without_duplicates(run, source, rows, keys)
        existing = _existing(engine, Contact, keys, _CONTACT_FIELDS)
        with engine.begin() as connection:
            _upsert(run, connection, Contact, rows, keys, _CONTACT_FIELDS, existing)
    return run.report


def _good_rows(
    run: IngestRun, source: Source, check: Callable[[Chunk, Reasons], pd.DataFrame]
) -> pd.DataFrame:
    parts = []
    for chunk in source.chunks():
        run.report.rows_read += len(chunk)
        reasons = Reasons(chunk.shape_problems)
        values = check(chunk, reasons)
        good = run.quarantine_chunk(chunk, reasons)
        parts.append(values[good].assign(line=chunk.line_numbers[good]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _column(chunk: Chunk, name: str, default: str = "") -> pd.Series:
    frame = chunk.frame
    if name not in frame:
        return pd.Series(default, index=frame.index, dtype=object)
    return frame[name].astype(object).where(frame[name] != "", default)


def _flag_length(reasons: Reasons, values: pd.Series, name: str, limit: int) -> None:
    reasons.flag((values.str.len() > limit).to_numpy(), f"{name} is longer than {limit} characters")


def _optional_float(reasons: Reasons, text: pd.Series, name: str, bound: float) -> pd.Series:
    numbers = pd.to_numeric(text.replace("", np.nan), errors="coerce").astype("float64")
    bad = (text != "") & ~(numbers.abs() <= bound)
    reasons.flag(bad.to_numpy(), f"{name} must be a number between -{bound:g} and {bound:g}")
    return numbers.astype(object).where(numbers.notna(), None)


def _check_household(chunk: Chunk, reasons: Reasons) -> pd.DataFrame:
    values = pd.DataFrame(
        {
            "id": _column(chunk, "household_id"),
            "organisation_id": _column(chunk, "organisation", DEFAULT_ORGANISATION),
            "name": _column(chunk, "name"),
            "area": _column(chunk, "area"),
            "address": _column(chunk, "address"),
            "timezone": _column(chunk, "timezone", DEFAULT_TIMEZONE),
            "policy": _column(chunk, "policy", "default"),
        }
    )
    reasons.flag((values["id"] == "").to_numpy(), "household_id is missing")
    reasons.flag((values["name"] == "").to_numpy(), "name is missing")
    for column, label, limit in _HOUSEHOLD_LIMITS:
        _flag_length(reasons, values[column], label, limit)
    reasons.flag_each(
        ~values["timezone"].map(is_zone).to_numpy(dtype=bool),
        values["timezone"],
        lambda value: f"timezone {value!r} is not an IANA time zone (such as Asia/Tokyo)",
    )
    lat_text = _column(chunk, _coordinate_column(chunk, "lat", "latitude"))
    lon_text = _column(chunk, _coordinate_column(chunk, "lon", "longitude"))
    values["lat"] = _optional_float(reasons, lat_text, "lat", 90)
    values["lon"] = _optional_float(reasons, lon_text, "lon", 180)
    reasons.flag(
        ((lat_text == "") != (lon_text == "")).to_numpy(),
        "lat and lon must both be set or both be empty",
    )
    return values


def _coordinate_column(chunk: Chunk, short: str, long: str) -> str:
    """``lat``/``lon``, or ``latitude``/``longitude`` in files that spell them out."""
    return long if short not in chunk.frame and long in chunk.frame else short


def _check_contact(chunk: Chunk, reasons: Reasons, known: KnownHouseholds) -> pd.DataFrame:
    household = _column(chunk, "household_id")
    values = pd.DataFrame(
        {
            "household_id": household,
            "name": _column(chunk, "name"),
            "role": _column(chunk, "role").str.lower(),
            "phone": _column(chunk, "phone"),
            "language": _column(chunk, "language", "ja").str.lower(),
        }
    )
    reasons.flag((household == "").to_numpy(), "household_id is missing")
    reasons.flag_each(
        known.codes(household) < 0,
        household,
        lambda value: f"unknown household {value!r} (not in the roster)",
    )
    reasons.flag((values["name"] == "").to_numpy(), "name is missing")
    _flag_length(reasons, values["name"], "name", 200)
    roles = [role.value for role in ContactRole]
    reasons.flag(~values["role"].isin(roles).to_numpy(), f"role must be one of {', '.join(roles)}")
    # The reason never repeats the number: reasons are shown to staff and logged.
    reasons.flag(
        ~values["phone"].str.match(E164).to_numpy(dtype=bool),
        "phone is not an E.164 number (+, country code, 7 to 15 digits, no spaces)",
    )
    reasons.flag(~values["language"].isin(LANGUAGES).to_numpy(), "language must be ja or en")
    email = _column(chunk, "email").str.strip()
    # Like the phone, the reason never repeats the address.
    reasons.flag(
        ((email != "") & ~email.str.match(_EMAIL).fillna(False).astype(bool)).to_numpy(),
        "email must have one @ and no spaces, or be empty",
    )
    _flag_length(reasons, email, "email", MAX_EMAIL)
    values["email"] = email.where(email != "", None)
    for name in ("quiet_start", "quiet_end"):
        text = _column(chunk, name)
        valid = text.str.match(_CLOCK_TIME).fillna(False).astype(bool)
        reasons.flag(
            ((text != "") & ~valid).to_numpy(), f"{name} must be HH:MM (00:00 to 23:59) or empty"
        )
        values[name] = [
            time.fromisoformat(t) if ok else None
            for t, ok in zip(text.tolist(), valid.tolist(), strict=True)
        ]
    reasons.flag(
        (values["quiet_start"].isna() != values["quiet_end"].isna()).to_numpy(),
        "quiet_start and quiet_end must both be set or both be empty",
    )
    priority = _column(chunk, "priority", "1")
    number = pd.to_numeric(priority, errors="coerce").astype("float64")
    whole = ((number >= 0) & (number <= MAX_PRIORITY) & (number % 1 == 0)).to_numpy(dtype=bool)
    reasons.flag(~whole, f"priority must be a whole number from 0 to {MAX_PRIORITY}")
    values["priority"] = number.where(whole, 0).astype(np.int64).tolist()
    return values


def _without_duplicates(
    run: IngestRun, source: Source, rows: pd.DataFrame, keys: list[str]
) -> pd.DataFrame:
    if rows.empty:
        return rows
    fields = [column for column in rows.columns if column not in keys and column != "line"]
    duplicates = find_duplicates(rows.astype(object).fillna(""), keys, fields)
    run.report.rows_unchanged += len(duplicates.repeats)
    if len(duplicates.conflicting):
        numbers = sorted(rows["line"].iloc[duplicates.conflicting].tolist())
        raws = source.raw_lines(set(numbers))
        reason = (
            f"the same {' + '.join(keys)} appears on several lines of this file with different "
            "values; none of them was loaded, since we cannot tell which is right"
        )
        run.quarantine(numbers, [raws.get(n, "") for n in numbers], [reason] * len(numbers))
    return rows[duplicates.keep_mask(len(rows))]


def _existing(
    engine: Engine, table: type[SQLModel], keys: list[str], fields: tuple[str, ...]
) -> dict[tuple, tuple]:
    columns = [getattr(table, name) for name in (*keys, *fields)]
    with engine.connect() as connection:
        found = connection.execute(select(*columns)).all()
    return {_key(row[: len(keys)]): tuple(row[len(keys) :]) for row in found}


def _key(values: tuple) -> tuple:
    return tuple(value.value if isinstance(value, ContactRole) else value for value in values)


def _create_organisations(connection: Connection, organisation_ids: list[str]) -> None:
    insert = _dialect_insert(connection)
    rows = [{"id": org, "name": org} for org in organisation_ids]
    if rows:
        connection.execute(insert(Organisation).on_conflict_do_nothing(index_elements=["id"]), rows)


def _upsert(
    run: IngestRun,
    connection: Connection,
    table: type[SQLModel],
    rows: pd.DataFrame,
    keys: list[str],
    fields: tuple[str, ...],
    existing: dict[tuple, tuple],
) -> None:
    changed = []
    for record in rows.drop(columns="line").to_dict("records"):
        key = tuple(record[name] for name in keys)
        old = existing.get(key)
        if old is not None and old == tuple(record[name] for name in fields):
            run.report.rows_unchanged += 1
            continue
        if old is None:
            run.report.rows_inserted += 1
        else:
            run.report.rows_corrected += 1
        run.report.households.add(record["household_id" if "household_id" in record else "id"])
        changed.append(record)
    if changed:
        statement = _dialect_insert(connection)(table)
        statement = statement.on_conflict_do_update(
            index_elements=keys, set_={name: statement.excluded[name] for name in fields}
        )
        connection.execute(statement, changed)


def _dialect_insert(connection: Connection) -> Callable[..., Insert]:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
