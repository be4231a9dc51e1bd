"""SQLite only: ``data_points_incoming``, where accepted points wait to be merged.

Same columns and primary key as ``data_points``, and no other index: staging a batch
appends to one B-tree instead of scattering it over the time index (see
``kpihub/storage/_sqlite_staging.py``). PostgreSQL writes ``data_points`` directly
and gets no such table.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLE = "data_points_incoming"


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def upgrade() -> None:
    if not _sqlite():
        return
    op.create_table(
        TABLE,
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("element_id", sa.Text, nullable=False),
        sa.Column("kpi", sa.Text, nullable=False),
        sa.Column("object_type", sa.Text, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("units", sa.Text, nullable=True),
        sa.Column("user_id", sa.Text, nullable=True),
        sa.Column("location_id", sa.Text, nullable=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("date_from", sa.BigInteger, nullable=True),
        sa.Column("date_to", sa.BigInteger, nullable=True),
        sa.Column("batch_id", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "environment", "type", "context", "element_id", name="pk_" + TABLE
        ),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    if not _sqlite():
        return
    # Staged points are accepted data: move them into data_points before the table goes.
    columns = (
        "tenant_id, environment, type, context, element_id, kpi, object_type, value, units, "
        "user_id, location_id, ts, date_from, date_to, batch_id, revision, updated_at"
    )
    op.execute(f"INSERT OR REPLACE INTO data_points ({columns}) SELECT {columns} FROM {TABLE}")
    op.drop_table(TABLE)
