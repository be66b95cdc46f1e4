"""``household.reading_interval_minutes``: the interval ingest gives a household's readings.

A file with a single reading of a household (every 30-minute tick) cannot show its interval, so
ingest used the interval of the household's latest stored reading: one probe of ``reading`` per
household, 1.2 of the 3.9 s a 100,000-household tick took to ingest on PostgreSQL. The household
now carries it (NULL: the 30-minute default). This fills it from each household's latest stored
reading, once, where that is not 30.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("household", sa.Column("reading_interval_minutes", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE household SET reading_interval_minutes = latest.minutes FROM ("
        " SELECT h.id, (SELECT r.interval_minutes FROM reading r WHERE r.household_id = h.id"
        "  ORDER BY r.interval_end DESC LIMIT 1) AS minutes FROM household h) AS latest"
        " WHERE latest.id = household.id AND latest.minutes <> 30"
    )


def downgrade() -> None:
    with op.batch_alter_table("household") as batch_op:
        batch_op.drop_column("reading_interval_minutes")
