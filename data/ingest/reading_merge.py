"""Merging one staged chunk of readings into ``reading``, in the caller's transaction.

Two ways, same outcome. ``merge_by_upsert`` is set-based SQL that both databases run: count,
record corrections, then ``INSERT ... ON CONFLICT DO UPDATE``. ``merge_by_split`` is the
PostgreSQL fast path, built on what a chunk usually is (new readings, a few re-sent ones):

1. one range probe per household in the chunk (its earliest to latest interval in the chunk)
   fetches the stored readings the chunk could touch into a small temporary table;
2. with none found (every first load), the chunk goes in with a plain ``INSERT ... SELECT``:
   no per-row conflict check, no per-row lookup;
3. otherwise new keys are inserted plainly (anti-join), corrections recorded, and only the
   changed rows updated.

The split is taken from a snapshot, so a concurrent writer could add a key in between: the plain
insert then fails with a unique violation, the caller's transaction rolls back, and the caller
runs the chunk again by upsert (``UniqueViolationRetry``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from data.ingest.staging import create_staging, drop_staging, load_staging, set_index_probes_only
from data.types import UTCDateTime

STAGING = "ingest_staging_reading"
STAGING_COLUMNS = {
    "household_id": "text",
    "interval_end": "time",
    "kwh": "float",
    "interval_minutes": "int",
}
_STORED = "ingest_stored_reading"
_MATCHED = "ingest_matched_reading"
_JOIN = "r.household_id = s.household_id AND r.interval_end = s.interval_end"
_NOW = bindparam("now", type_=UTCDateTime())


@dataclass
class ChunkCounts:
    inserted: int = 0
    corrected: int = 0
    unchanged: int = 0
    # Households with a new or corrected reading in the chunk.
    households: set[str] = field(default_factory=set)


# -- by upsert (SQLite, and PostgreSQL's fallback) ------------------------------------------------
_COUNT = text(
    f"SELECT s.household_id, "
    f"SUM(CASE WHEN r.kwh IS NULL THEN 1 ELSE 0 END), "
    f"SUM(CASE WHEN r.kwh <> s.kwh THEN 1 ELSE 0 END) "
    f"FROM {STAGING} s LEFT JOIN reading r ON {_JOIN} GROUP BY s.household_id"
)
_CORRECT = text(
    f"INSERT INTO readingcorrection "
    f"(household_id, interval_end, old_kwh, new_kwh, ingest_id, corrected_at) "
    f"SELECT s.household_id, s.interval_end, r.kwh, s.kwh, :ingest_id, :now "
    f"FROM {STAGING} s JOIN reading r ON {_JOIN} WHERE r.kwh <> s.kwh"
).bindparams(_NOW)
# "WHERE true" lets SQLite tell the upsert clause from a join condition.
_UPSERT = text(
    f"INSERT INTO reading (household_id, interval_end, kwh, interval_minutes, received_at) "
    f"SELECT household_id, interval_end, kwh, interval_minutes, :now FROM {STAGING} WHERE true "
    f"ON CONFLICT (household_id, interval_end) DO UPDATE SET kwh = excluded.kwh, "
    f"interval_minutes = excluded.interval_minutes, received_at = excluded.received_at "
    f"WHERE reading.kwh <> excluded.kwh OR reading.interval_minutes <> excluded.interval_minutes"
).bindparams(_NOW)


def merge_by_upsert(
    connection: Connection, values: dict[str, np.ndarray], ingest_id: int, now: datetime
) -> ChunkCounts:
    create_staging(connection, STAGING, STAGING_COLUMNS)
    load_staging(connection, STAGING, STAGING_COLUMNS, values)
    counts = ChunkCounts()
    for household_id, new, changed in connection.execute(_COUNT):
        counts.inserted += int(new or 0)
        counts.corrected += int(changed or 0)
        if new or changed:
            counts.households.add(household_id)
    if counts.corrected:
        connection.execute(_CORRECT, {"ingest_id": ingest_id, "now": now})
    connection.execute(_UPSERT, {"now": now})
    drop_staging(connection, STAGING)
    counts.unchanged = len(values["kwh"]) - counts.inserted - counts.corrected
    return counts


# -- by split (PostgreSQL) ------------------------------------------------------------------------
# Each household's probe must be an index range scan on the primary key (and, on a partitioned
# table, only touch the months it spans). "OFFSET 0" keeps the planner from flattening the
# LATERAL subquery into a hash join that would read the whole table.
_FETCH_STORED = (
    f"CREATE TEMP TABLE {_STORED} ON COMMIT DROP AS "
    f"SELECT r.household_id, r.interval_end, r.kwh, r.interval_minutes "
    f"FROM (SELECT household_id, MIN(interval_end) AS first_end, MAX(interval_end) AS last_end "
    f"      FROM {STAGING} GROUP BY household_id) b "
    f"CROSS JOIN LATERAL (SELECT * FROM reading l WHERE l.household_id = b.household_id "
    f"      AND l.interval_end BETWEEN b.first_end AND b.last_end OFFSET 0) r"
)
_INSERT_ALL = text(
    f"INSERT INTO reading (household_id, interval_end, kwh, interval_minutes, received_at) "
    f"SELECT household_id, interval_end, kwh, interval_minutes, :now FROM {STAGING}"
).bindparams(_NOW)
# The chunk's rows whose key is stored, with the stored values beside the new ones.
_FIND_MATCHED = (
    f"CREATE TEMP TABLE {_MATCHED} ON COMMIT DROP AS "
    f"SELECT s.household_id, s.interval_end, s.kwh, s.interval_minutes, "
    f"r.kwh AS old_kwh, r.interval_minutes AS old_minutes "
    f"FROM {STAGING} s JOIN {_STORED} r ON {_JOIN}"
)
_COUNT_MATCHED = (
    f"SELECT household_id, COUNT(*), COUNT(*) FILTER (WHERE old_kwh <> kwh), "
    f"COUNT(*) FILTER (WHERE old_kwh <> kwh OR old_minutes <> interval_minutes) "
    f"FROM {_MATCHED} GROUP BY household_id"
)
_INSERT_NEW = text(
    f"INSERT INTO reading (household_id, interval_end, kwh, interval_minutes, received_at) "
    f"SELECT s.household_id, s.interval_end, s.kwh, s.interval_minutes, :now FROM {STAGING} s "
    f"WHERE NOT EXISTS (SELECT 1 FROM {_STORED} r WHERE {_JOIN})"
).bindparams(_NOW)
_CORRECT_MATCHED = text(
    f"INSERT INTO readingcorrection "
    f"(household_id, interval_end, old_kwh, new_kwh, ingest_id, corrected_at) "
    f"SELECT household_id, interval_end, old_kwh, kwh, :ingest_id, :now FROM {_MATCHED} "
    f"WHERE old_kwh <> kwh"
).bindparams(_NOW)
_UPDATE_CHANGED = text(
    f"UPDATE reading r SET kwh = s.kwh, interval_minutes = s.interval_minutes, "
    f"received_at = :now FROM {_MATCHED} s "
    f"WHERE {_JOIN} AND (s.old_kwh <> s.kwh OR s.old_minutes <> s.interval_minutes)"
).bindparams(_NOW)


def merge_by_split(
    connection: Connection, values: dict[str, np.ndarray], ingest_id: int, now: datetime
) -> ChunkCounts:
    """PostgreSQL only; may raise ``IntegrityError`` if a concurrent writer added a key."""
    create_staging(connection, STAGING, STAGING_COLUMNS, force_index_probes=False)
    # Joins of two chunk-sized temporary tables hash in memory: without statistics the planner
    # would sort both on text keys (slow under a linguistic collation), or spill to disk.
    connection.exec_driver_sql("SET LOCAL work_mem = '64MB'")
    connection.exec_driver_sql("SET LOCAL enable_mergejoin = off")
    load_staging(connection, STAGING, STAGING_COLUMNS, values, analyze=False)
    stored = connection.exec_driver_sql(_FETCH_STORED).rowcount
    rows = len(values["kwh"])
    if stored == 0:
        connection.execute(_INSERT_ALL, {"now": now})
        return ChunkCounts(inserted=rows, households=set(values["household_id"].tolist()))
    connection.exec_driver_sql(_FIND_MATCHED)
    per_household = Counter(values["household_id"].tolist())
    counts = ChunkCounts()
    to_update = 0
    for household_id, matched, corrected, changed in connection.exec_driver_sql(_COUNT_MATCHED):
        new = per_household.pop(household_id) - matched
        counts.inserted += new
        counts.corrected += corrected
        to_update += changed
        if new or corrected:
            counts.households.add(household_id)
    counts.inserted += sum(per_household.values())  # households with nothing stored
    counts.households |= set(per_household)
    counts.unchanged = rows - counts.inserted - counts.corrected
    if counts.inserted:
        connection.execute(_INSERT_NEW, {"now": now})
    if counts.corrected:
        connection.execute(_CORRECT_MATCHED, {"ingest_id": ingest_id, "now": now})
    if to_update:
        # A row whose interval alone changed is updated too (no correction: same energy).
        set_index_probes_only(connection, True)
        connection.execute(_UPDATE_CHANGED, {"now": now})
    return counts
