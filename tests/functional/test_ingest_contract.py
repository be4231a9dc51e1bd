"""The ingestion contract (DESIGN §1) over HTTP: the article's body, its variants, upserts.

Stored rows are read back through a connection of their own (``Harness.rows``, on
SQLite or PostgreSQL), so these tests check what was committed, not what the app
believes it wrote.
"""

from __future__ import annotations

import copy
import gzip
import json
import zlib
from typing import Any

import pytest

from kpihub.domain import Environment
from tests.functional.harness import INTEGRATION, Credentials, Harness, example_body, one_element

ARTICLE_EPOCH_UTC = 1568120963  # "2019-09-10 13:09:23" in UTC
ARTICLE_EPOCH_CPH = 1568113763  # the same wall clock in Europe/Copenhagen (CEST, +02:00)

Row = dict[str, Any]


def points(harness: Harness, **where: object) -> dict[str, Row]:
    """Stored data points keyed by element id, optionally filtered by column values."""
    sql = "SELECT * FROM data_points"
    if where:
        sql += " WHERE " + " AND ".join(f"{column} = ?" for column in where)
    return {row["element_id"]: row for row in harness.records(sql, *where.values())}


def stored_types(harness: Harness, *columns: str) -> set[tuple[type, ...]]:
    """The Python types the stored values of ``columns`` come back as.

    On SQLite a value's type is its storage class (what ``typeof()`` reports), so a
    number stored where text was meant shows up as ``int``; on PostgreSQL it is the
    column's type.
    """
    found = harness.rows(f"SELECT {', '.join(columns)} FROM data_points")
    return {tuple(type(v) for v in row) for row in found}


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    ack: dict[str, Any] = response.json()
    assert ack["status"] == "ok"
    return ack


def counts(ack: dict[str, Any]) -> tuple[int, int, int, int]:
    return ack["received"], ack["created"], ack["updated"], ack["unchanged"]


# -- the article's example -----------------------------------------------------------


def test_article_example_ack_and_stored_rows(harness: Harness, token: str) -> None:
    ack = ok(harness.post_kpi(token, example_body()))
    assert counts(ack) == (6, 6, 0, 0)
    assert isinstance(ack["batch_id"], str) and ack["batch_id"]
    assert ack["batch_id"] != ok(harness.post_kpi(token, example_body()))["batch_id"]

    rows = points(harness)
    assert sorted(rows) == ["1", "2", "3", "4", "5", "6"]
    expected = {
        "1": ("device_sales", 100.0, "Devices sold", "123", "321"),
        "2": ("bonuses", 150.0, "Bonus earned", "123", "321"),
        "3": ("points", 100.0, "Points", "89", None),
        "4": ("profit", 250.0, "Eur", "89", None),
        "5": ("points", 100.0, "Points", None, "3"),
        "6": ("experience", 150.0, "Experience", None, "3"),
    }
    for element_id, (kpi, value, units, user_id, location_id) in expected.items():
        row = rows[element_id]
        assert (row["kpi"], row["units"], row["user_id"], row["location_id"]) == (
            kpi,
            units,
            user_id,
            location_id,
        )
        assert type(row["value"]) is float and row["value"] == value
        assert row["object_type"] == "number"
        assert (row["ts"], row["date_from"], row["date_to"]) == (ARTICLE_EPOCH_UTC,) * 3
        assert (row["type"], row["context"], row["environment"]) == (
            INTEGRATION,
            "sales",
            "testing",
        )
    # Stored as TEXT, not as the integers the article sent.
    assert stored_types(harness, "element_id") == {(str,)}
    assert stored_types(harness, "value") == {(float,)}


def test_article_times_use_the_tenant_time_zone(harness: Harness) -> None:
    harness.tenant("cph", "Europe/Copenhagen")
    harness.integration("cph")
    creds = harness.client("cph")
    ack = ok(harness.post_kpi(harness.token(creds), example_body(), tenant="cph"))
    assert counts(ack) == (6, 6, 0, 0)
    rows = points(harness)
    assert len(rows) == 6
    for row in rows.values():
        assert (row["ts"], row["date_from"], row["date_to"]) == (ARTICLE_EPOCH_CPH,) * 3


# -- variants the docs allow -----------------------------------------------------------


def test_ids_as_integers_and_strings_are_stored_as_strings(harness: Harness, token: str) -> None:
    body = one_element(id="sku-7/2019")
    body["data"] = [
        {"user_id": 123, "location_id": "321", "elements": body["data"][0]["elements"]},
        {"location_id": 3, "elements": [{**body["data"][0]["elements"][0], "id": 42}]},
    ]
    assert counts(ok(harness.post_kpi(token, body))) == (2, 2, 0, 0)
    rows = points(harness)
    assert (rows["sku-7/2019"]["user_id"], rows["sku-7/2019"]["location_id"]) == ("123", "321")
    assert (rows["42"]["user_id"], rows["42"]["location_id"]) == (None, "3")
    assert stored_types(harness, "element_id", "location_id") == {(str, str)}


def test_data_from_and_data_to_aliases(harness: Harness, token: str) -> None:
    body = one_element(data_from="2019-09-01 00:00:00", data_to="2019-09-30 23:59:59")
    ok(harness.post_kpi(token, body))
    row = points(harness)["1"]
    assert (row["date_from"], row["date_to"]) == (1567296000, 1569887999)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (ARTICLE_EPOCH_UTC, ARTICLE_EPOCH_UTC),
        (str(ARTICLE_EPOCH_UTC), ARTICLE_EPOCH_UTC),
        (ARTICLE_EPOCH_UTC + 0.75, ARTICLE_EPOCH_UTC),
        ("2019-09-10T15:09:23+02:00", ARTICLE_EPOCH_UTC),
        ("2019-09-10T13:09:23Z", ARTICLE_EPOCH_UTC),
        ("2019-09-10T08:09:23.999-05:00", ARTICLE_EPOCH_UTC),
    ],
)
def test_time_forms(harness: Harness, token: str, timestamp: object, expected: int) -> None:
    body = one_element(timestamp=timestamp, date_from=timestamp, date_to=timestamp)
    ok(harness.post_kpi(token, body))
    row = points(harness)["1"]
    assert (row["ts"], row["date_from"], row["date_to"]) == (expected,) * 3


@pytest.mark.parametrize(
    ("value", "stored"),
    [(100, 100.0), (12.5, 12.5), (-3, -3.0), (0, 0.0), ("1e3", 1000.0), ("-0.25", -0.25)],
)
def test_value_as_json_number_or_numeric_string(
    harness: Harness, token: str, value: object, stored: float
) -> None:
    ok(harness.post_kpi(token, one_element(value=value)))
    row = points(harness)["1"]
    assert type(row["value"]) is float and row["value"] == stored


def test_content_type_with_charset(harness: Harness, token: str) -> None:
    response = harness.post_kpi(
        token,
        content=json.dumps(example_body()).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert counts(ok(response)) == (6, 6, 0, 0)
    assert len(points(harness)) == 6


def test_gzip_body(harness: Harness, token: str) -> None:
    raw = json.dumps(example_body()).encode()
    response = harness.post_kpi(
        token, content=gzip.compress(raw), headers={"Content-Encoding": "gzip"}
    )
    assert counts(ok(response)) == (6, 6, 0, 0)
    assert len(points(harness)) == 6
    (stored,) = harness.rows("SELECT raw_body FROM batches WHERE http_status = 200")
    assert zlib.decompress(stored[0]) == raw  # the decompressed body is what is kept


def test_multi_member_gzip_body_is_read_whole(harness: Harness, token: str) -> None:
    # `cat a.gz b.gz` is a valid gzip file (RFC 1952 §2.2); dropping the second
    # member would silently store half of the body.
    raw = json.dumps(example_body()).encode()
    compressed = gzip.compress(raw[:100]) + gzip.compress(raw[100:])
    response = harness.post_kpi(token, content=compressed, headers={"Content-Encoding": "gzip"})
    assert counts(ok(response)) == (6, 6, 0, 0)
    (stored,) = harness.rows("SELECT raw_body FROM batches WHERE http_status = 200")
    assert zlib.decompress(stored[0]) == raw
    # NUL padding after the last member is tolerated, as gzip(1) does.
    padded = gzip.compress(raw) + bytes(16)
    response = harness.post_kpi(token, content=padded, headers={"Content-Encoding": "gzip"})
    assert counts(ok(response)) == (6, 0, 0, 6)


def test_unicode_text_round_trips(harness: Harness, token: str) -> None:
    body = one_element(kpi="omsætning", units="kr.", id="ø-1")
    body["data"][0]["user_id"] = "Søren"
    ok(harness.post_kpi(token, body))
    row = points(harness)["ø-1"]
    assert (row["kpi"], row["user_id"]) == ("omsætning", "Søren")


# -- upsert: element identity is (tenant, environment, type, context, id) -------------


def test_resending_the_same_batch_changes_nothing(harness: Harness, token: str) -> None:
    first = ok(harness.post_kpi(token, example_body()))
    before = points(harness)
    again = ok(harness.post_kpi(token, example_body()))
    assert counts(again) == (6, 0, 0, 6)
    after = points(harness)
    assert {k: r["value"] for k, r in after.items()} == {k: r["value"] for k, r in before.items()}
    # Unchanged rows still point at the batch that last changed them.
    assert {r["batch_id"] for r in after.values()} == {first["batch_id"]}
    assert {r["revision"] for r in after.values()} == {1}


def test_changed_values_are_updated(harness: Harness, token: str) -> None:
    ok(harness.post_kpi(token, example_body()))
    body = example_body()
    body["data"][0]["elements"][1]["value"] = "175.50"
    body["data"][2]["elements"][0]["value"] = 99
    ack = ok(harness.post_kpi(token, body))
    assert counts(ack) == (6, 0, 2, 4)
    rows = points(harness)
    assert rows["2"]["value"] == 175.5 and rows["5"]["value"] == 99.0
    assert rows["1"]["value"] == 100.0
    assert (rows["2"]["batch_id"], rows["5"]["batch_id"]) == (ack["batch_id"],) * 2
    assert rows["1"]["batch_id"] != ack["batch_id"]
    assert (rows["2"]["revision"], rows["1"]["revision"]) == (2, 1)


@pytest.mark.parametrize(
    "field", ["units", "timestamp", "date_to", "user_id", "location_id", "kpi"]
)
def test_any_stored_field_change_counts_as_updated(
    harness: Harness, token: str, field: str
) -> None:
    body = one_element(units="Points", date_to="2019-09-10 13:09:23")
    body["data"][0]["location_id"] = "321"
    ok(harness.post_kpi(token, body))
    changed = copy.deepcopy(body)
    if field in ("user_id", "location_id"):
        changed["data"][0][field] = "999"
    else:
        changed["data"][0]["elements"][0][field] = (
            "2019-09-11 00:00:00" if field in ("timestamp", "date_to") else "other"
        )
    assert counts(ok(harness.post_kpi(token, changed))) == (1, 0, 1, 0)
    assert counts(ok(harness.post_kpi(token, changed))) == (1, 0, 0, 1)


def test_dropping_an_optional_field_counts_as_updated(harness: Harness, token: str) -> None:
    ok(harness.post_kpi(token, one_element(units="Points")))
    assert counts(ok(harness.post_kpi(token, one_element()))) == (1, 0, 1, 0)
    assert points(harness)["1"]["units"] is None


def test_same_ids_in_another_context_or_type_are_other_elements(
    harness: Harness, token: str
) -> None:
    harness.integration(identifier="acme-hr")
    ok(harness.post_kpi(token, example_body()))
    other_context = example_body()
    other_context["context"] = "hr"
    assert counts(ok(harness.post_kpi(token, other_context))) == (6, 6, 0, 0)
    assert counts(ok(harness.post_kpi(token, example_body("acme-hr")))) == (6, 6, 0, 0)
    by_identity = harness.rows(
        "SELECT type, context, COUNT(*) FROM data_points GROUP BY type, context ORDER BY 1, 2"
    )
    assert by_identity == [
        ("acme-hr", "sales", 6),
        (INTEGRATION, "hr", 6),
        (INTEGRATION, "sales", 6),
    ]


def test_environments_never_mix(harness: Harness, token: str, creds: Credentials) -> None:
    production = harness.client(environment=Environment.PRODUCTION)
    prod_token = harness.token(production)
    ok(harness.post_kpi(token, example_body()))
    changed = example_body()
    changed["data"][0]["elements"][0]["value"] = "1"
    assert counts(ok(harness.post_kpi(prod_token, changed))) == (6, 6, 0, 0)
    assert counts(ok(harness.post_kpi(prod_token, changed))) == (6, 0, 0, 6)
    assert points(harness, environment="testing")["1"]["value"] == 100.0
    assert points(harness, environment="production")["1"]["value"] == 1.0
    tenant = harness.run(lambda: harness.storage.get_tenant("acme"))
    assert tenant is not None
    tenant_id = tenant.id
    in_testing = harness.run(lambda: harness.storage.count_points(tenant_id, Environment.TESTING))
    in_production = harness.run(
        lambda: harness.storage.count_points(tenant_id, Environment.PRODUCTION)
    )
    assert (in_testing, in_production) == (6, 6)


def test_tenants_never_mix(harness: Harness, token: str) -> None:
    harness.tenant("beta")
    harness.integration("beta")
    beta = harness.token(harness.client("beta"))
    ok(harness.post_kpi(token, example_body()))
    assert counts(ok(harness.post_kpi(beta, example_body(), tenant="beta"))) == (6, 6, 0, 0)
    assert len({r[0] for r in harness.rows("SELECT tenant_id FROM data_points")}) == 2


# -- every accepted batch is kept ------------------------------------------------------


def test_accepted_batches_are_recorded_with_their_raw_body(
    harness: Harness, token: str, creds: Credentials
) -> None:
    first_raw = json.dumps(example_body(), indent=2).encode()
    first = ok(harness.post_kpi(token, content=first_raw))
    body = example_body()
    body["data"][1]["elements"][0]["value"] = "101"
    second_raw = json.dumps(body).encode()
    second = ok(harness.post_kpi(token, content=second_raw))

    client_pk = harness.scalar("SELECT id FROM clients WHERE client_id = ?", creds.client_id)
    batches = {r["id"]: r for r in harness.records("SELECT * FROM batches WHERE http_status = 200")}
    assert set(batches) == {first["batch_id"], second["batch_id"]}
    for ack, raw in ((first, first_raw), (second, second_raw)):
        row = batches[ack["batch_id"]]
        assert zlib.decompress(row["raw_body"]) == raw
        assert row["client_pk"] == client_pk
        assert row["environment"] == "testing"
        assert (row["type"], row["context"], row["version"], row["endpoint"]) == (
            INTEGRATION,
            "sales",
            "1.0.0",
            "kpi",
        )
        assert (row["received"], row["created"], row["updated"], row["unchanged"]) == counts(ack)
        assert row["errors"] is None
        assert row["body_truncated"] == 0
    assert counts(second) == (6, 0, 1, 5)
