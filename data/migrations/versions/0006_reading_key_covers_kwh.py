"""PostgreSQL: `reading`'s primary key carries `kwh`: a household's chart reads the index only.

The dashboard's chart reads one household's last 43 days (14 shown, 29 more for its usual band):
about 2,064 rows. Readings arrive in time order, so in the heap one household's rows lie one to a
page, and reading them from a cold cache is one random page read each. With ``kwh`` in the
key's index (``INCLUDE``, not a key column: uniqueness and ``ON CONFLICT`` are unchanged) the
same rows come from a few adjacent index pages by an index-only scan. The index grows by 8 bytes
a row. Measured by ``scripts/bench_storage.py`` (``docs/performance.md`` §2): at 2,000
households the cold query went from 66 to 4.6 ms (median).

An index-only scan skips the heap only for pages the visibility map marks all-visible, which
VACUUM sets. Autovacuum visits a partition once the rows inserted since its last visit pass a
fifth of its size (PostgreSQL 13 and later), so all but the last few days of a month are covered;
rows on pages not yet visited are fetched from the heap, and those recent pages are the ones most
likely to be cached. Ingest does not vacuum itself: that would add a rewrite of every new page
(hint bits) to the daily batch.

On an existing large database this rebuilds every partition's key index (one-off, under an
exclusive lock on ``reading``; plan for it). SQLite is unchanged: its chart reads are from a
small embedded database.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _key(include: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bind.exec_driver_sql(
        "ALTER TABLE reading DROP CONSTRAINT reading_pkey, "
        f"ADD CONSTRAINT reading_pkey PRIMARY KEY (household_id, interval_end){include}"
    )


def upgrade() -> None:
    _key(" INCLUDE (kwh)")


def downgrade() -> None:
    _key("")
