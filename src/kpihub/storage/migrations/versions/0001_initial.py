"""Initial schema: tenants, integrations, clients, keys, batches, data points.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "integrations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("identifier", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("tenant_id", "identifier", name="uq_integrations_tenant_identifier"),
    )
    op.create_table(
        "clients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("client_id", sa.Text, nullable=False, unique=True),
        sa.Column("secret_hash", sa.LargeBinary, nullable=False),
        sa.Column("old_secret_hash", sa.LargeBinary, nullable=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("rate_limit", sa.Integer, nullable=True),
        sa.Column("token_ttl", sa.Integer, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.Column("tokens_valid_after", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_clients_tenant", "clients", ["tenant_id", "environment"])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.Text, primary_key=True),
        sa.Column("private_pem", sa.LargeBinary, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("retired_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.Text, primary_key=True),
        sa.Column("client_pk", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("environment", sa.Text, nullable=True),
        sa.Column("client_pk", sa.Integer, nullable=True),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=True),
        sa.Column("context", sa.Text, nullable=True),
        sa.Column("version", sa.Text, nullable=True),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("received", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=True),
        sa.Column("raw_body", sa.LargeBinary, nullable=True),
        sa.Column("body_truncated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("errors", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.Text, nullable=True),
    )
    op.create_index("ix_batches_tenant_time", "batches", ["tenant_id", "received_at"])
    op.create_table(
        "data_points",
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
        sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "environment", "type", "context", "element_id", name="pk_data_points"
        ),
        sqlite_with_rowid=False,
    )
    # Time-range filters name the context and KPI (a KPI belongs to one context);
    # the primary key above serves the ingestion upsert.
    op.create_index(
        "ix_data_points_time",
        "data_points",
        ["tenant_id", "environment", "context", "kpi", "ts"],
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("client_pk", sa.Integer, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("client_pk", "key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "data_points",
        "batches",
        "revoked_tokens",
        "signing_keys",
        "clients",
        "integrations",
        "tenants",
    ):
        op.drop_table(table)
