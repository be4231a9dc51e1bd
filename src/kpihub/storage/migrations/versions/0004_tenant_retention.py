"""Retention per tenant: how many days of data points (and received batches) to keep.

NULL keeps everything (the default, and what every tenant had before). Retention is a
term agreed with the client organisation, so it is set per tenant and applies to both
environments alike. The purge reads the existing indexes (the time index per context
and KPI for points, ``ix_batches_tenant_time`` for batches): no new index slows
ingestion down.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("retention_days", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("retention_days")
