"""Schema migrations on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpihub.errors import InvalidInput, StoreUnavailable
from kpihub.storage._sqlite_driver import sqlite3
from kpihub.storage.migrate import (
    HEAD,
    _config,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from kpihub.storage.urls import scheme, sqlalchemy_url
from tests import databases

TABLES = {
    "tenants",
    "integrations",
    "clients",
    "signing_keys",
    "revoked_tokens",
    "batches",
    "data_points",
    "idempotency_keys",
}


def tables(url: str) -> set[str]:
    if scheme(url) == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    return {row[0] for row in databases.rows(url, sql)}


def test_head_constant_matches_the_migration_scripts() -> None:
    assert head_revision() == HEAD


def test_upgrade_creates_every_table(empty_database_url: str) -> None:
    assert current_revision(empty_database_url) is None

    before, after = upgrade(empty_database_url)

    assert (before, after) == (None, HEAD)
    assert current_revision(empty_database_url) == HEAD
    assert TABLES | {"alembic_version"} <= tables(empty_database_url)
    assert upgrade(empty_database_url) == (HEAD, HEAD)


def test_upgrade_creates_every_table_in_a_new_folder(tmp_path: Path) -> None:
    # SQLite-only: the database file's folders are created as needed.
    url = f"sqlite:///{tmp_path / 'new' / 'folder' / 'k.db'}"
    assert current_revision(url) is None

    before, after = upgrade(url)

    assert (before, after) == (None, HEAD)
    with sqlite3.connect(tmp_path / "new" / "folder" / "k.db") as conn:
        found = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert found >= TABLES


def test_migrations_on_sqlite_use_the_library_of_every_other_connection(tmp_path: Path) -> None:
    """Two copies of SQLite in one process break each other's locks: SQLAlchemy's
    connections for a migration come from the same module as the store's."""
    import sqlalchemy as sa

    opened: list[str] = []

    def record(dbapi_connection: object, _: object) -> None:
        opened.append(type(dbapi_connection).__module__)

    sa.event.listen(sa.engine.Engine, "connect", record)
    try:
        upgrade(f"sqlite:///{tmp_path / 'k.db'}")
    finally:
        sa.event.remove(sa.engine.Engine, "connect", record)

    ours = sqlite3.connect(":memory:")
    assert opened, "the upgrade opened no connection through SQLAlchemy"
    assert set(opened) == {type(ours).__module__}
    ours.close()


def test_ensure_schema_is_idempotent(empty_database_url: str) -> None:
    ensure_schema(empty_database_url)
    ensure_schema(empty_database_url)
    assert current_revision(empty_database_url) == HEAD
    assert tables(empty_database_url) >= TABLES


def test_unknown_revision_names_the_value(empty_database_url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        upgrade(empty_database_url, "nonsense")
    assert "nonsense" in caught.value.message
    assert current_revision(empty_database_url) is None  # nothing was applied


def test_a_missing_postgres_database_is_unavailable() -> None:
    # PostgreSQL-only: SQLite creates a missing database file.
    missing = databases.ADMIN_URL.rsplit("/", 1)[0] + "/kpihub_no_such_database"
    with pytest.raises(StoreUnavailable) as caught:
        current_revision(missing)
    assert missing in caught.value.message
    assert "kpihub_no_such_database" in caught.value.message


def downgrade(url: str, revision: str) -> None:
    import sqlalchemy as sa
    from alembic import command

    engine = sa.create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    engine.dispose()


def test_only_sqlite_has_a_staging_table(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    assert ("data_points_incoming" in tables(empty_database_url)) == (
        scheme(empty_database_url) == "sqlite"
    )


COLUMNS = (
    "tenant_id, environment, type, context, element_id, kpi, object_type, value, units, "
    "user_id, location_id, ts, date_from, date_to, batch_id, revision, updated_at"
)


def point_rows(count: int, *, revision: int) -> list[tuple[object, ...]]:
    """``count`` rows of a point table, in ``COLUMNS`` order, element ids "0", "1"..."""
    scope = (1, "production", "pos", "sales")
    tail = (None, None, "b1", revision, 1.0)  # date_from, date_to, batch, revision, updated_at
    return [
        (*scope, str(n), "kpi", "number", n / 4, None, "u", None, 100 + n, *tail)
        for n in range(count)
    ]


def test_downgrading_past_staging_keeps_the_staged_points(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    staged = (1, "production", "pos", "sales", "7", "kpi", "number", 2.5, None, "u", None)
    with sqlite3.connect(tmp_path / "k.db") as conn:
        conn.execute(
            f"INSERT INTO data_points_incoming ({COLUMNS}) VALUES ({', '.join('?' * 17)})",
            (*staged, 100, None, None, "b1", 3, 1.0),
        )

    downgrade(url, "0004")

    with sqlite3.connect(tmp_path / "k.db") as conn:
        kept = conn.execute(f"SELECT {COLUMNS} FROM data_points").fetchall()
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert kept == [(*staged, 100, None, None, "b1", 3, 1.0)]
    assert "data_points_incoming" not in names


def key_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The primary key's columns of a WITHOUT ROWID table, in the key's order."""
    (index,) = [row[1] for row in conn.execute(f"PRAGMA index_list({table})") if row[3] == "pk"]
    return [row[2] for row in conn.execute(f"PRAGMA index_info({index})")]


def test_the_element_first_key_keeps_every_point_both_ways(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url, "0005")
    rows = point_rows(50, revision=1)
    insert = f"({COLUMNS}) VALUES ({', '.join('?' * 17)})"
    with sqlite3.connect(tmp_path / "k.db") as conn:
        conn.executemany(f"INSERT INTO data_points {insert}", rows[:40])
        conn.executemany(f"INSERT INTO data_points_incoming {insert}", rows[40:])
    scope_first = ["tenant_id", "environment", "type", "context", "element_id"]
    element_first = ["element_id", "tenant_id", "environment", "type", "context"]

    def stored() -> tuple[list[tuple[object, ...]], list[str], list[str]]:
        with sqlite3.connect(tmp_path / "k.db") as conn:
            both = conn.execute(
                f"SELECT {COLUMNS} FROM data_points UNION ALL "
                f"SELECT {COLUMNS} FROM data_points_incoming"
            ).fetchall()
            time_index = [r[2] for r in conn.execute("PRAGMA index_info(ix_data_points_time)")]
            keys = [key_columns(conn, t) for t in ("data_points", "data_points_incoming")]
            assert keys[0] == keys[1]
        return sorted(both, key=lambda r: int(r[4])), keys[0], time_index

    assert stored()[1] == scope_first
    upgrade(url, "0006")
    points, key, time_index = stored()
    assert (points, key) == (rows, element_first)
    assert time_index[:5] == ["tenant_id", "environment", "context", "kpi", "ts"]

    downgrade(url, "0005")
    assert stored()[:2] == (rows, scope_first)


def at_revision_holding(
    tmp_path: Path, revision: str, table: str, rows: list[tuple[object, ...]], columns: str
) -> str:
    """A SQLite file migrated to ``revision`` whose ``table`` holds ``rows``; its URL."""
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url, revision)
    marks = ", ".join("?" * len(rows[0]))
    with sqlite3.connect(tmp_path / "k.db") as conn:
        conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
    return url


def test_the_staging_table_loses_its_key_and_keeps_its_rows_both_ways(tmp_path: Path) -> None:
    rows = point_rows(30, revision=2)
    url = at_revision_holding(tmp_path, "0006", "data_points_incoming", rows, COLUMNS)

    def staged() -> tuple[list[tuple[object, ...]], list[list[str]]]:
        with sqlite3.connect(tmp_path / "k.db") as conn:
            held = conn.execute(f"SELECT {COLUMNS} FROM data_points_incoming").fetchall()
            indexes = [
                [c[2] for c in conn.execute(f"PRAGMA index_info({row[1]})")]
                for row in conn.execute("PRAGMA index_list(data_points_incoming)")
            ]
        return sorted(held, key=lambda r: int(r[4])), indexes

    upgrade(url)
    assert staged() == (rows, [])  # no key, no index: rows appended in arrival order

    downgrade(url, "0006")
    assert staged() == (rows, [["element_id", "tenant_id", "environment", "type", "context"]])
    with sqlite3.connect(tmp_path / "k.db") as conn:
        assert key_columns(conn, "data_points_incoming")[0] == "element_id"
        with pytest.raises(sqlite3.OperationalError, match="rowid"):
            conn.execute("SELECT rowid FROM data_points_incoming")  # WITHOUT ROWID again


def test_series_ids_fill_every_point_and_go_away_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url, "0007")
    rows = point_rows(12, revision=1)
    # Three series: two KPIs of one context, and the first KPI in another tenant.
    rows = [
        (2 if n >= 8 else 1, *r[1:5], "other" if n % 2 else "kpi", *r[6:])
        for n, r in enumerate(rows)
    ]
    insert = f"({COLUMNS}) VALUES ({', '.join('?' * 17)})"
    with sqlite3.connect(tmp_path / "k.db") as conn:
        conn.executemany(f"INSERT INTO data_points {insert}", rows[:9])
        conn.executemany(f"INSERT INTO data_points_incoming {insert}", rows[9:])

    def stored() -> list[tuple[object, ...]]:
        with sqlite3.connect(tmp_path / "k.db") as conn:
            return sorted(
                conn.execute(
                    f"SELECT {COLUMNS} FROM data_points UNION ALL "
                    f"SELECT {COLUMNS} FROM data_points_incoming"
                ).fetchall(),
                key=lambda r: int(r[4]),
            )

    def time_index() -> list[str]:
        with sqlite3.connect(tmp_path / "k.db") as conn:
            return [r[2] for r in conn.execute("PRAGMA index_info(ix_data_points_time)")]

    upgrade(url, "0008")
    assert stored() == rows
    assert time_index() == ["series_id", "ts", "user_id", "location_id", "value", "kpi"]
    with sqlite3.connect(tmp_path / "k.db") as conn:
        series = {
            (t, e, c, k): i
            for i, t, e, c, k in conn.execute(
                "SELECT id, tenant_id, environment, context, kpi FROM series"
            )
        }
        for table in ("data_points", "data_points_incoming"):
            for *scope, series_id in conn.execute(
                f"SELECT tenant_id, environment, context, kpi, series_id FROM {table}"
            ):
                assert series[tuple(scope)] == series_id, (table, scope)
    assert sorted(series) == [
        (1, "production", "sales", "kpi"),
        (1, "production", "sales", "other"),
        (2, "production", "sales", "kpi"),
        (2, "production", "sales", "other"),
    ]

    downgrade(url, "0007")
    assert stored() == rows
    assert time_index()[:5] == ["tenant_id", "environment", "context", "kpi", "ts"]
    assert "series" not in tables(url)


def test_the_points_get_a_rowid_and_keep_their_key_both_ways(tmp_path: Path) -> None:
    rows = point_rows(25, revision=2)
    url = at_revision_holding(
        tmp_path, "0008", "data_points", [(*r, 1) for r in rows], f"{COLUMNS}, series_id"
    )

    def layout() -> tuple[list[tuple[object, ...]], dict[str, list[str]], bool]:
        """The points, each index's columns (by name), and whether the table has rowids."""
        with sqlite3.connect(tmp_path / "k.db") as conn:
            points = conn.execute(f"SELECT {COLUMNS}, series_id FROM data_points").fetchall()
            indexes = {
                row[1]: [c[2] for c in conn.execute(f"PRAGMA index_info({row[1]})")]
                for row in conn.execute("PRAGMA index_list(data_points)")
            }
            try:
                conn.execute("SELECT rowid FROM data_points LIMIT 1")
            except sqlite3.OperationalError:
                has_rowid = False
            else:
                has_rowid = True
        return sorted(points, key=lambda r: int(r[4])), indexes, has_rowid

    key = ["element_id", "tenant_id", "environment", "type", "context"]
    time_index = ["series_id", "ts", "user_id", "location_id", "value", "kpi"]
    before = layout()
    assert before[2] is False and before[1]["ix_data_points_time"] == time_index
    new_time_index = [*time_index[:-1], "type"]  # the series names the KPI

    upgrade(url, "0009")
    points, indexes, has_rowid = layout()
    assert points == before[0] == [(*r, 1) for r in rows]
    assert has_rowid
    assert indexes == {"ix_data_points_key": key, "ix_data_points_time": new_time_index}
    with (
        sqlite3.connect(tmp_path / "k.db") as conn,
        pytest.raises(sqlite3.IntegrityError, match="UNIQUE"),
    ):
        conn.execute(
            f"INSERT INTO data_points ({COLUMNS}, series_id) VALUES ({', '.join('?' * 18)})",
            (*rows[3], 1),
        )

    downgrade(url, "0008")
    points, indexes, has_rowid = layout()
    assert (points, has_rowid) == (before[0], False)
    assert indexes["ix_data_points_time"] == time_index
    with sqlite3.connect(tmp_path / "k.db") as conn:
        assert key_columns(conn, "data_points") == key
