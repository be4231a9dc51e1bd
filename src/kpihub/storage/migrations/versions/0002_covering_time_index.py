"""The time index covers what aggregates read: user_id, location_id and value.

A leaderboard or series over a KPI reads a range of ``ix_data_points_time``
(context, kpi, ts). Without the extra columns every entry costs a primary-key lookup
for the value and the ids: a 30-day leaderboard over one KPI of a 10-million point
tenant (41k points) took about 250 ms on SQLite and 400 ms on PostgreSQL; reading
the index alone, about 25 ms. A series of one location (or one user) reads the same
range and keeps its own points, also from the index alone (about 20-35 ms for 90
days): a separate location index would save little and cost ingestion a third of
its throughput (every element inserted at a random place of one more index).

On SQLite the extra columns are trailing key columns (an SQLite index also holds the
primary key, so type and element id come free); on PostgreSQL they are ``INCLUDE``
columns (index-only scans, as far as the visibility map allows).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TIME_KEY = ["tenant_id", "environment", "context", "kpi", "ts"]
_COVERED = ["user_id", "location_id", "value"]


def upgrade() -> None:
    op.drop_index("ix_data_points_time", table_name="data_points")
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_data_points_time", "data_points", _TIME_KEY, postgresql_include=_COVERED
        )
    else:
        op.create_index("ix_data_points_time", "data_points", _TIME_KEY + _COVERED)


def downgrade() -> None:
    op.drop_index("ix_data_points_time", table_name="data_points")
    op.create_index("ix_data_points_time", "data_points", _TIME_KEY)
