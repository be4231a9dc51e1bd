"""SQLite only: ``data_points_incoming``, where accepted points wait to be merged.

Same columns and primary key as ``data_points``, and no other index: staging a batch
appends to one B-tree instead of scattering it over the time index (see
``kpihub/storage/_sqlite_staging.py``). PostgreSQL writes ``data_points`` directly
and gets no such table.

Revision ID: 0005
Revises: 0004
"""

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
    # The same columns and primary key as data_points, whatever they are at this point;
    # no secondary index comes with them.
    (ddl,) = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'data_points'"
        )
        .one()
    )
    staging = ddl.replace("CREATE TABLE data_points", f"CREATE TABLE {TABLE}", 1).replace(
        "CONSTRAINT pk_data_points", f"CONSTRAINT pk_{TABLE}", 1
    )
    assert staging != ddl, ddl
    op.execute(staging)


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
