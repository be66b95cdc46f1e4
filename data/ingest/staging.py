"""Bulk loading of one chunk into a temporary staging table, the fast way on each backend.

The chunk is then merged into its real table with set-based SQL that is the same on SQLite and
PostgreSQL (``INSERT ... SELECT ... ON CONFLICT``). SQLite gets the rows by ``executemany``;
PostgreSQL by ``COPY`` through psycopg, which is several times faster than any INSERT.
(Readings have their own PostgreSQL merge: see ``data.ingest.reading_merge``.)

SQLite gets times as text in the form SQLAlchemy stores ``UTCDateTime`` there
(``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), so keys compare equal to rows written through the ORM;
PostgreSQL parses ISO 8601 with ``Z`` into ``timestamptz``.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sqlalchemy.engine import Connection

# Column kinds of a staging table and their SQL type on each backend.
_TYPES = {
    "text": ("TEXT", "TEXT"),
    "time": ("TEXT", "TIMESTAMPTZ"),
    "float": ("REAL", "DOUBLE PRECISION"),
    "int": ("INTEGER", "INTEGER"),
}


def create_staging(
    connection: Connection, table: str, columns: dict[str, str], *, force_index_probes: bool = True
) -> None:
    """Create an empty temporary table ``table`` with ``columns`` (name -> kind).

    On PostgreSQL, ``force_index_probes`` turns hash and merge joins off for the rest of the
    transaction; pass False when the caller's own SQL sets the join methods it needs.
    """
    postgres = connection.dialect.name == "postgresql"
    spec = ", ".join(f"{name} {_TYPES[kind][postgres]}" for name, kind in columns.items())
    if postgres:
        connection.exec_driver_sql(f"CREATE TEMP TABLE {table} ({spec}) ON COMMIT DROP")
        if force_index_probes:
            set_index_probes_only(connection, True)
    else:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table}")
        connection.exec_driver_sql(f"CREATE TEMP TABLE {table} ({spec})")


def set_index_probes_only(connection: Connection, only: bool) -> None:
    """PostgreSQL: allow (False) or forbid (True) hash and merge joins in this transaction.

    Matching a chunk against its table must probe the primary key, whatever the table's size:
    a hash join would scan all of the table for every chunk, and the planner picks one whenever
    the table's statistics lag behind a fast-growing table. Joins between two temporary tables,
    on the other hand, need hash joins (a nested loop over two unindexed tables is quadratic).
    """
    setting = "off" if only else "on"
    connection.exec_driver_sql(f"SET LOCAL enable_hashjoin = {setting}")
    connection.exec_driver_sql(f"SET LOCAL enable_mergejoin = {setting}")


def drop_staging(connection: Connection, table: str) -> None:
    if connection.dialect.name != "postgresql":  # PostgreSQL drops it at commit
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table}")


def load_staging(
    connection: Connection,
    table: str,
    columns: dict[str, str],
    values: dict[str, np.ndarray],
    *,
    analyze: bool = True,
) -> None:
    """Append rows to the staging table; ``values`` holds one array per column, in order.

    Time columns are ``datetime64[us]`` arrays holding UTC. On PostgreSQL the table is analysed
    afterwards unless ``analyze`` is False (a caller that fixes its join methods need not).
    """
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        # pyarrow writes CSV far faster than pandas; nulls come out as empty fields (NULL to
        # COPY) and empty strings as "" (kept empty).
        table_data = pa.table(
            {
                name: _postgres_time_text(values[name]) if kind == "time" else values[name]
                for name, kind in columns.items()
            }
        )
        buffer = io.BytesIO()
        pcsv.write_csv(table_data, buffer, pcsv.WriteOptions(include_header=False))
        with driver.cursor() as cursor:
            names = ", ".join(columns)
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(buffer.getbuffer())
            if analyze:
                cursor.execute(f"ANALYZE {table}")
    else:
        data = [
            _sqlite_time_text(values[name]) if kind == "time" else np.asarray(values[name])
            for name, kind in columns.items()
        ]
        rows = list(zip(*(column.tolist() for column in data), strict=True))
        marks = ", ".join("?" * len(columns))
        driver.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def _postgres_time_text(times: np.ndarray) -> pa.Array:
    """UTC times as "YYYY-MM-DD HH:MM:SS.ffffffZ" text, nulls kept.

    Formatting zoned timestamps is pyarrow's slow path (about 5 s per million); naive ones cast
    to text in a few milliseconds, and the "Z" tells PostgreSQL they are UTC.
    """
    naive = pc.cast(pa.array(np.asarray(times).astype("datetime64[us]")), pa.string())
    return pc.binary_join_element_wise(naive, pa.scalar("Z"), "")


def _sqlite_time_text(times: np.ndarray) -> np.ndarray:
    text = np.datetime_as_string(times.astype("datetime64[us]"), unit="us")  # ...THH:MM:SS.ffffff
    # Swap the "T" for a space in place, byte-wise: far faster than a string replace.
    as_bytes = text.astype("S26")
    as_bytes.view(np.uint8).reshape(-1, 26)[:, 10] = ord(" ")
    return as_bytes.astype("U26")
