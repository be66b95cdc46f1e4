"""SQLite: ``reading`` loses its foreign key to ``household``, as on PostgreSQL since 0004.

Migration 0004 left the partitioned PostgreSQL table without the key (the per-row check cost more
than the insert) but SQLite kept it, so the two databases disagreed with each other and with the
``Reading`` model: a reading of a household missing from the roster was refused on one and stored
on the other. Ingest already quarantines such readings before they reach the table, so the key
guarded nothing ingest does not; now no database has it and the model does not declare it.

SQLite cannot drop a constraint in place: the batch operation rebuilds ``reading`` (no table
refers to it, so the rebuild trips no other foreign key). Its constraint was created unnamed in
0001; the naming convention gives it the name the batch operation looks for.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
_KEY = "fk_reading_household_id_household"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("reading", naming_convention=_NAMING) as batch_op:
        batch_op.drop_constraint(_KEY, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("reading") as batch_op:
        batch_op.create_foreign_key(_KEY, "household", ["household_id"], ["id"])
