"""PostgreSQL: a chunk of readings that are all new is COPYed straight into ``reading``.

``merge_by_split`` first COPYs a chunk into a temporary table, probes ``reading`` for the
stored rows it could touch, and with none found (every first load, every new day) moves the
chunk with ``INSERT ... SELECT``: the rows are written twice. Here the probe comes first, built
from the chunk's own per-household ranges sent as arrays, and when it finds nothing the rows go
into ``reading`` by one COPY (routed to the month partitions by PostgreSQL), saving the staging
table's write and read.

Same guarantees as the split: the chunk is written in the caller's transaction, and a concurrent
writer that stores one of the keys between the probe and the COPY makes the COPY fail on the
primary key; that is raised as ``IntegrityError``, the caller's transaction rolls back, and the
caller merges the chunk again by upsert.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from data.ingest.reading_merge import ChunkCounts
from data.ingest.staging import load_staging

# One primary-key range probe per household, stopping at the first row found; LIMIT keeps the
# lateral subquery from being flattened into a join that would read the whole table.
_ANY_STORED = (
    "SELECT EXISTS (SELECT 1 "
    "FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS b(id, first_end, last_end) "
    "CROSS JOIN LATERAL (SELECT 1 FROM reading r WHERE r.household_id = b.id "
    "      AND r.interval_end BETWEEN b.first_end AND b.last_end LIMIT 1) found)"
)
_COLUMNS = {
    "household_id": "text",
    "interval_end": "time",
    "kwh": "float",
    "interval_minutes": "int",
    # The same instant on every row: formatted once, sent as text (PostgreSQL parses it).
    "received_at": "text",
}


def copy_if_all_new(
    connection: Connection, values: dict[str, np.ndarray], now: datetime
) -> ChunkCounts | None:
    """COPY the chunk into ``reading`` if none of its keys can be stored; else ``None``.

    ``values`` is sorted by household and time (as ``_merge`` passes it).
    """
    ids = values["household_id"]
    ends = np.asarray(values["interval_end"]).astype("datetime64[us]")
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    stops = np.concatenate((starts[1:], [len(ids)])) - 1
    firsts, lasts = _utc_text(ends[starts]), _utc_text(ends[stops])
    if _any_stored(connection, ids[starts].tolist(), firsts, lasts):
        return None
    received = np.full(len(ids), now.isoformat())  # aware: "+00:00" says UTC
    try:
        load_staging(
            connection, "reading", _COLUMNS, {**values, "received_at": received}, analyze=False
        )
    except psycopg.errors.UniqueViolation as error:
        raise IntegrityError("COPY reading", None, error) from error
    return ChunkCounts(inserted=len(ids), households=set(ids[starts].tolist()))


def _any_stored(
    connection: Connection, ids: list[str], firsts: list[str], lasts: list[str]
) -> bool:
    with connection.connection.driver_connection.cursor() as cursor:
        cursor.execute(_ANY_STORED, (ids, firsts, lasts))
        return bool(cursor.fetchone()[0])


def _utc_text(times: np.ndarray) -> list[str]:
    return [f"{text}Z" for text in np.datetime_as_string(times, unit="us").tolist()]
