"""SQLite only: ``data_points`` becomes a rowid table, its key a unique index, and the
time index carries ``type`` instead of ``kpi``.

In a WITHOUT ROWID table every index entry carries the whole primary key, so each
entry of the time index ``(series_id, ts, user_id, location_id, value, kpi)`` also held
``element_id, tenant_id, environment, type, context``: about half of its bytes. Each
merge inserts every staged row into that index at a random place of its live end, and
the pages it dirties are what a merge costs (their B-tree work, then their WAL frames).
In a rowid table an index entry carries an integer instead, and the key lives on as a
unique index on the same five columns (the upsert's conflict target, the counting
query's seek).

The time index becomes ``(series_id, ts, user_id, location_id, value, type)``: ``kpi``
is the series' own (reads take it from ``series``), and ``type``, which a filter may
name, is now in the index rather than in the key it carried. ``element_id`` and
``context`` (the "last" rule's tie-breaks, the points' pages) are read from the row when
a query needs them: SQLite seeks the row by its rowid only for the index entries that
pass every condition the index decides.

The table is rebuilt, once, when the new version first starts (the rows copied, the
indexes built again), with the write lock held throughout: about 3.5 s per million
points. The old table's pages stay in the file as free pages, which new points reuse
(``VACUUM`` gives them back to the file system). The key, now a B-tree of its own,
makes a store about 9% bigger.

Revision ID: 0009
Revises: 0008
"""

import re

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLE = "data_points"
KEY = "element_id, tenant_id, environment, type, context"
PRIMARY_KEY = f"CONSTRAINT pk_data_points PRIMARY KEY ({KEY})"
KEY_INDEX = f"CREATE UNIQUE INDEX ix_data_points_key ON {TABLE} ({KEY})"
WITHOUT_ROWID = "WITHOUT ROWID"
OLD_TIME_INDEX = "series_id, ts, user_id, location_id, value, kpi"
NEW_TIME_INDEX = "series_id, ts, user_id, location_id, value, type"


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _rebuild(*, rowid: bool) -> None:
    """``data_points`` again, with a rowid (the key a unique index, the new time index) or
    without one (the key its primary key, the old time index); same columns and rows."""
    bind = op.get_bind()
    (ddl,) = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).one()
    rebuilt = f"{TABLE}_rebuilt"
    # After a rename SQLite keeps the name quoted: everything before the columns goes.
    columns = ddl[ddl.index("(") : ddl.rindex(")") + 1]
    if rowid:
        columns, found = re.subn(rf",\s*{re.escape(PRIMARY_KEY)}", "", columns)
        assert found == 1, ddl
        new_ddl = f"CREATE TABLE {rebuilt} {columns}"
    else:
        new_ddl = f"CREATE TABLE {rebuilt} {columns[:-1]}, {PRIMARY_KEY}) {WITHOUT_ROWID}"
    # A leftover of an interrupted upgrade holds nothing the old table does not.
    op.execute(f"DROP TABLE IF EXISTS {rebuilt}")
    op.execute(new_ddl)
    op.execute(f"INSERT INTO {rebuilt} SELECT * FROM {TABLE}")
    op.execute(f"DROP TABLE {TABLE}")
    op.execute(f"ALTER TABLE {rebuilt} RENAME TO {TABLE}")
    if rowid:
        op.execute(KEY_INDEX)
    time_index = NEW_TIME_INDEX if rowid else OLD_TIME_INDEX
    op.execute(f"CREATE INDEX ix_data_points_time ON {TABLE} ({time_index})")


def upgrade() -> None:
    if _sqlite():
        _rebuild(rowid=True)


def downgrade() -> None:
    if _sqlite():
        _rebuild(rowid=False)
