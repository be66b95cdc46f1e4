"""Alembic environment: runs on the connection ``data.db.init_db`` hands over, or on a URL."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import data.tables  # noqa: F401

target_metadata = SQLModel.metadata
config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from data.db import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
        with engine.begin() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
