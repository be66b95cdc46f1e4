"""Operator incidents about a data source (``source_stale``), not about a household.

An incident now belongs either to a household (``household_id``) or to a configured source
(``source``); one open incident per source and kind, like one per household and kind. A source's
row also remembers when it was first seen, so one that never succeeded can go stale too.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

import data.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # SQLite rebuilds the table to drop NOT NULL; with foreign keys on, dropping the old copy
        # would trip incidentevent's and notification's references. Only takes effect outside a
        # transaction, which is where Alembic's pysqlite connection stands before the first DML.
        bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.alter_column(
            "household_id", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        )
        batch_op.add_column(
            sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_incident_source"), ["source"], unique=False)
        batch_op.create_index(
            "uq_incident_open_source_kind",
            ["source", "kind"],
            unique=True,
            sqlite_where=sa.text("status != 'resolved'"),
            postgresql_where=sa.text("status != 'resolved'"),
        )
    with op.batch_alter_table("sourcecursor", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_seen_at", data.types.UTCDateTime(timezone=True), nullable=True)
        )
    if bind.dialect.name == "sqlite":
        # Inside the transaction the pragma cannot be switched back on: this connection is
        # closed after the migration instead of going back to the pool with foreign keys off.
        bind.detach()


def downgrade() -> None:
    op.execute(
        "DELETE FROM notification WHERE incident_id IN "
        "(SELECT id FROM incident WHERE household_id IS NULL)"
    )
    op.execute(
        "DELETE FROM incidentevent WHERE incident_id IN "
        "(SELECT id FROM incident WHERE household_id IS NULL)"
    )
    op.execute("DELETE FROM incident WHERE household_id IS NULL")
    with op.batch_alter_table("sourcecursor", schema=None) as batch_op:
        batch_op.drop_column("first_seen_at")
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_index("uq_incident_open_source_kind")
        batch_op.drop_index(batch_op.f("ix_incident_source"))
        batch_op.drop_column("source")
        batch_op.alter_column(
            "household_id",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
            nullable=False,
        )
