"""SQLite only: ``data_points_incoming`` without a primary key, rows in arrival order.

Staging inserted every accepted element into a B-tree keyed like ``data_points``, so
that a resent element replaced its staged row and could be looked up when the next
batch was counted. The writer now merges first whenever a batch may hold an id that
is staged (``_sqlite_staging.StagedIds``), so the staging table never holds two rows
of one key and is never looked up by key: a plain rowid table, each row appended at
its end, no comparisons.

Revision ID: 0007
Revises: 0006
"""

import re
from collections.abc import Callable

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLE = "data_points_incoming"
KEY = f"CONSTRAINT pk_{TABLE} PRIMARY KEY (element_id, tenant_id, environment, type, context)"


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _rebuild(columns_and_key: Callable[[str], str], suffix: str) -> None:
    """The staging table again: its columns (and key) as ``columns_and_key`` makes them
    of the current ones, then ``suffix``; its rows, a later one replacing an earlier."""
    bind = op.get_bind()
    (ddl,) = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).one()
    inside = ddl[ddl.index("(") + 1 : ddl.rindex(")")]
    rebuilt = f"{TABLE}_rebuilt"
    # A leftover of an interrupted upgrade holds nothing the old table does not.
    op.execute(f"DROP TABLE IF EXISTS {rebuilt}")
    op.execute(f"CREATE TABLE {rebuilt} ({columns_and_key(inside)}){suffix}")
    op.execute(f"INSERT OR REPLACE INTO {rebuilt} SELECT * FROM {TABLE}")
    op.execute(f"DROP TABLE {TABLE}")
    op.execute(f"ALTER TABLE {rebuilt} RENAME TO {TABLE}")


def _without_key(inside: str) -> str:
    columns, key, _ = re.split(r",\s*(CONSTRAINT pk_\w+ PRIMARY KEY \([^)]*\))", inside)
    assert key == KEY, inside
    return columns


def upgrade() -> None:
    if _sqlite():
        _rebuild(_without_key, "")


def downgrade() -> None:
    if _sqlite():
        _rebuild(lambda inside: f"{inside.rstrip()}, {KEY}", " WITHOUT ROWID")
