"""Rejected batches over HTTP: 422 in Laravel's shape, every problem listed, nothing stored."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kpihub.settings import Settings
from tests.functional.conftest import make_settings
from tests.functional.harness import Harness, example_body, one_element, open_harness

E0 = "data.0.elements.0"


# Nothing in this module may store a data point, so one app and one database serve
# every test: setting up a fresh app per test would cost more than the tests.


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> Settings:
    return make_settings(tmp_path_factory.mktemp("validation"), database_url=module_database_url)


@pytest.fixture(scope="module")
def harness(settings: Settings) -> Iterator[Harness]:
    with open_harness(settings) as h:
        yield h


@pytest.fixture(scope="module")
def token(harness: Harness) -> str:
    return harness.token(harness.client(rate_limit=100_000))


@pytest.fixture(scope="module", autouse=True)
def seeded(harness: Harness, token: str) -> None:
    """One accepted batch, so "nothing stored" also means "nothing overwritten"."""
    response = harness.post_kpi(token, example_body())
    assert response.status_code == 200, response.text
    assert stored_points(harness) == 6


def stored_points(harness: Harness) -> int:
    count: int = harness.scalar("SELECT COUNT(*) FROM data_points")
    return count


def rejected(harness: Harness, token: str, body: Any) -> tuple[str, dict[str, list[str]]]:
    """POST ``body`` on top of one stored batch; assert a 422 that stored nothing."""
    before = stored_points(harness)
    response = harness.post_kpi(token, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert set(doc) == {"message", "errors"}
    assert isinstance(doc["message"], str) and doc["message"]
    errors = doc["errors"]
    assert errors and all(
        isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)
        for messages in errors.values()
    )
    assert stored_points(harness) == before
    return doc["message"], errors


def only(errors: dict[str, list[str]], path: str) -> str:
    assert list(errors) == [path], errors
    assert len(errors[path]) == 1, errors
    return errors[path][0]


# -- the top-level fields ------------------------------------------------------------


@pytest.mark.parametrize("field", ["type", "version", "context", "data"])
@pytest.mark.parametrize("how", ["missing", "empty", "null"])
def test_required_top_level_fields(harness: Harness, token: str, field: str, how: str) -> None:
    body = one_element()
    if how == "missing":
        del body[field]
    else:
        body[field] = None if how == "null" else ([] if field == "data" else "")
    message, errors = rejected(harness, token, body)
    text = only(errors, field)
    assert message == text
    assert text.startswith(f"The {field} field ")
    assert ("required" in text) if how != "empty" else ("empty" in text)


def test_body_that_is_not_an_object(harness: Harness, token: str) -> None:
    _, errors = rejected(harness, token, [example_body()])
    assert "JSON object" in only(errors, "body")


def test_unregistered_type_names_it_and_says_how_to_register(harness: Harness, token: str) -> None:
    message, errors = rejected(harness, token, example_body("not-registered"))
    text = only(errors, "type")
    assert message == text
    assert "'not-registered'" in text
    assert "kpihub integration create" in text


def test_type_registered_after_a_refusal_is_accepted_at_once(harness: Harness, token: str) -> None:
    # Known identifiers are remembered by the process; refusals must not be.
    rejected(harness, token, example_body("registered-later"))
    harness.integration(identifier="registered-later")
    response = harness.post_kpi(token, example_body("registered-later"))
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 6


def test_type_of_another_tenant_is_not_registered_here(harness: Harness, token: str) -> None:
    harness.tenant("beta")  # the only test that creates it: the app is shared
    harness.integration("beta", "beta-only")
    _, errors = rejected(harness, token, example_body("beta-only"))
    assert "'beta-only'" in only(errors, "type")


def test_every_error_is_reported_with_its_dotted_path(harness: Harness, token: str) -> None:
    body = example_body("not-registered")
    del body["context"]
    body["data"][0]["elements"][1]["value"] = "1,5"
    body["data"][1]["elements"][0]["timestamp"] = 1568120963000
    del body["data"][2]["location_id"]
    body["data"][2]["elements"][1]["object_type"] = "percentage"
    message, errors = rejected(harness, token, body)
    assert list(errors) == [
        "type",
        "context",
        "data.0.elements.1.value",
        "data.1.elements.0.timestamp",
        "data.2.user_id",
        "data.2.elements.1.object_type",
    ]
    assert message == errors["type"][0] + " (and 5 more errors)"
    assert "'not-registered'" in message


def test_one_more_error_is_singular(harness: Harness, token: str) -> None:
    body = one_element(value="x", timestamp="yesterday")
    message, errors = rejected(harness, token, body)
    assert list(errors) == [f"{E0}.value", f"{E0}.timestamp"]
    assert message == errors[f"{E0}.value"][0] + " (and 1 more error)"


def test_a_bad_element_rejects_the_whole_batch(harness: Harness, token: str) -> None:
    body = example_body()
    for entry in body["data"]:
        for element in entry["elements"]:
            element["value"] = "999"
    body["data"][2]["elements"][1]["value"] = "n/a"
    _, errors = rejected(harness, token, body)
    assert list(errors) == ["data.2.elements.1.value"]
    values = {r[0] for r in harness.rows("SELECT value FROM data_points")}
    assert 999.0 not in values


# -- values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("1,5", "Use '.' as the decimal separator, e.g. '1.5'"),
        ("NaN", "NaN"),
        ("Infinity", "infinity"),
        ("", "empty string"),
        (True, "Booleans are not numbers"),
        ([1], "single number"),
        (" 12", "whitespace"),
    ],
)
def test_bad_values(harness: Harness, token: str, value: object, says: str) -> None:
    message, errors = rejected(harness, token, one_element(value=value))
    text = only(errors, f"{E0}.value")
    assert message == text
    assert text.startswith(f"The {E0}.value field must be a")
    assert says in text


def test_missing_or_null_value(harness: Harness, token: str) -> None:
    _, errors = rejected(harness, token, one_element(value=None))
    assert "is required" in only(errors, f"{E0}.value")
    body = one_element()
    body["data"][0]["elements"][0]["value"] = None
    _, errors = rejected(harness, token, body)
    assert "got null" in only(errors, f"{E0}.value")


@pytest.mark.parametrize("object_type", ["percentage", "Number", 1])
def test_unknown_object_type(harness: Harness, token: str, object_type: object) -> None:
    _, errors = rejected(harness, token, one_element(object_type=object_type))
    text = only(errors, f"{E0}.object_type")
    assert "'number'" in text


# -- times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "timestamp", "says"),
    [
        ("timestamp", 1568120963000, "milliseconds; divide by 1000 (e.g. 1568120963)"),
        ("timestamp", "1568120963000", "milliseconds"),
        ("timestamp", "10/09/2019", "Send epoch seconds"),
        ("timestamp", "2019-09-10", "Add a time of day"),
        ("timestamp", "2019-09-10T13:09:23", "with a UTC offset"),
        ("timestamp", -1, "1970"),
        ("date_from", "2019-02-30 00:00:00", "valid date"),
        ("date_to", 1568120963000, "milliseconds"),
    ],
)
def test_bad_times(
    harness: Harness,
    token: str,
    field: str,
    timestamp: object,
    says: str,
) -> None:
    _, errors = rejected(harness, token, one_element(**{field: timestamp}))
    assert says in only(errors, f"{E0}.{field}")


def test_missing_timestamp(harness: Harness, token: str) -> None:
    _, errors = rejected(harness, token, one_element(timestamp=None))
    assert "is required" in only(errors, f"{E0}.timestamp")


@pytest.mark.parametrize(("start", "end"), [("date_from", "date_to"), ("data_from", "data_to")])
def test_date_from_after_date_to(harness: Harness, token: str, start: str, end: str) -> None:
    body = one_element(**{start: "2019-09-10 13:09:24", end: "2019-09-10 13:09:23"})
    _, errors = rejected(harness, token, body)
    text = only(errors, f"{E0}.{end}")
    assert "must not be before date_from" in text


# -- ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [(1, 1), (1, "1"), ("a", "a")])
def test_duplicate_element_id_in_one_batch(
    harness: Harness, token: str, first: object, second: object
) -> None:
    body = example_body()
    body["data"][0]["elements"][0]["id"] = first
    body["data"][2]["elements"][1]["id"] = second
    _, errors = rejected(harness, token, body)
    text = only(errors, "data.2.elements.1.id")
    assert "duplicate" in text and "data.0.elements.0.id" in text


def test_neither_user_id_nor_location_id(harness: Harness, token: str) -> None:
    body = example_body()
    del body["data"][1]["user_id"]
    _, errors = rejected(harness, token, body)
    text = only(errors, "data.1.user_id")
    assert "location_id" in text and "required" in text


@pytest.mark.parametrize("bad", [1.5, True, "", {"id": 1}])
def test_bad_owner_ids(harness: Harness, token: str, bad: object) -> None:
    body = one_element()
    body["data"][0]["location_id"] = bad
    _, errors = rejected(harness, token, body)
    only(errors, "data.0.location_id")


@pytest.mark.parametrize("bad", [None, "", 1.5, True, "x" * 256])
def test_bad_element_ids(harness: Harness, token: str, bad: object) -> None:
    _, errors = rejected(harness, token, one_element(id=bad))
    only(errors, f"{E0}.id")


def test_empty_elements(harness: Harness, token: str) -> None:
    body = one_element()
    body["data"][0]["elements"] = []
    _, errors = rejected(harness, token, body)
    assert "must not be empty" in only(errors, "data.0.elements")


# -- rejected batches are kept for the debugger ----------------------------------------


def test_rejected_batch_is_recorded_with_its_errors(harness: Harness, token: str) -> None:
    body = one_element(value="1,5")
    raw = json.dumps(body).encode()
    before = {r[0] for r in harness.rows("SELECT id FROM batches")}
    response = harness.post_kpi(token, content=raw)
    assert response.status_code == 422
    rows = [r for r in harness.records("SELECT * FROM batches") if r["id"] not in before]
    assert len(rows) == 1
    row = rows[0]
    assert row["http_status"] == 422
    assert json.loads(row["errors"]) == response.json()["errors"]
    assert row["message"] == response.json()["message"]
    assert zlib.decompress(row["raw_body"]) == raw
    assert row["environment"] == "testing"
    assert row["client_pk"] is not None
    assert (row["received"], row["created"], row["updated"], row["unchanged"]) == (0, 0, 0, 0)


def test_unauthenticated_request_is_401_and_stores_nothing(harness: Harness) -> None:
    before = stored_points(harness)
    response: httpx.Response = harness.post_kpi(None, example_body())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert stored_points(harness) == before
