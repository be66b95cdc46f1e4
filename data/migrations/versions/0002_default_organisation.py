"""A fresh install has one organisation, ``default``, that households join unless told otherwise.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    organisation = sa.table("organisation", sa.column("id"), sa.column("name"))
    op.bulk_insert(organisation, [{"id": "default", "name": "Default organisation"}])


def downgrade() -> None:
    op.execute("DELETE FROM organisation WHERE id = 'default'")
