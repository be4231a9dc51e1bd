"""Dashboard users: people who sign in to a tenant's web dashboard.

``sessions_valid_after`` voids every session cookie issued before it (sign-out);
an index on ``batches`` serves the debugger's "latest requests of an environment".

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_login_at", sa.BigInteger, nullable=True),
        sa.Column("sessions_valid_after", sa.BigInteger, nullable=False, server_default="0"),
        sa.UniqueConstraint("tenant_id", "email", name="uq_dashboard_users_tenant_email"),
    )
    op.create_index(
        "ix_batches_tenant_env_time", "batches", ["tenant_id", "environment", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_batches_tenant_env_time", table_name="batches")
    op.drop_table("dashboard_users")
