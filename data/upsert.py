"""Insert-or-update of many rows in one statement, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session


def upsert(
    session: Session, model: type, rows: Sequence[dict[str, Any]], *, key: list[str]
) -> None:
    """Insert ``rows`` into ``model``'s table; where ``key`` exists, overwrite the other columns."""
    if not rows:
        return
    table = model.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table)
    updates = {c: statement.excluded[c] for c in rows[0] if c not in key}
    session.execute(statement.on_conflict_do_update(index_elements=key, set_=updates), rows)
