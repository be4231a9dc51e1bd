"""SQLite only: the time index leads with an integer series id.

Every ingested element is inserted into ``ix_data_points_time`` at a random place of
its recent end, and each of the binary searches that finds that place compared
``(tenant_id, environment, context, kpi)`` (an integer and three strings, equal along
most of the way down) before it reached ``ts``. ``series`` gives each (tenant,
environment, context, KPI) an integer id, staged and stored with every point, and the
index becomes ``(series_id, ts, user_id, location_id, value, kpi)``: a search compares
one integer, then the timestamp. It still covers what the reads filter, group and
aggregate on: ``kpi`` is a trailing column, and tenant, environment, type, context and
element id come with the primary key.

Reads on SQLite name the series ids of their filter (``series_id IN (SELECT id FROM
series WHERE ...)``) to reach the index. A series is never deleted: listing a
tenant's contexts or KPIs checks that a series still holds a point.

PostgreSQL keeps its index as it is.

The upgrade fills the ids of every stored point (the points are rewritten and the time
index rebuilt) with the write lock held: about 5 s per million points.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("data_points", "data_points_incoming")
SERIES_KEY = "tenant_id, environment, context, kpi"
OLD_TIME_INDEX = "tenant_id, environment, context, kpi, ts, user_id, location_id, value"
NEW_TIME_INDEX = "series_id, ts, user_id, location_id, value, kpi"


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def upgrade() -> None:
    if not _sqlite():
        return
    op.execute(
        "CREATE TABLE series (id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL, "
        "environment TEXT NOT NULL, context TEXT NOT NULL, kpi TEXT NOT NULL)"
    )
    op.execute(f"CREATE UNIQUE INDEX ix_series_key ON series ({SERIES_KEY})")
    op.execute("DROP INDEX ix_data_points_time")
    for table in TABLES:
        op.execute(
            f"INSERT OR IGNORE INTO series ({SERIES_KEY}) "
            f"SELECT DISTINCT {SERIES_KEY} FROM {table} ORDER BY {SERIES_KEY}"
        )
        op.execute(f"ALTER TABLE {table} ADD COLUMN series_id INTEGER")
        op.execute(
            f"UPDATE {table} SET series_id = (SELECT s.id FROM series AS s WHERE "
            f"s.tenant_id = {table}.tenant_id AND s.environment = {table}.environment "
            f"AND s.context = {table}.context AND s.kpi = {table}.kpi)"
        )
    op.execute(f"CREATE INDEX ix_data_points_time ON data_points ({NEW_TIME_INDEX})")


def downgrade() -> None:
    if not _sqlite():
        return
    op.execute("DROP INDEX ix_data_points_time")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN series_id")
    op.execute("DROP TABLE series")
    op.execute(f"CREATE INDEX ix_data_points_time ON data_points ({OLD_TIME_INDEX})")
