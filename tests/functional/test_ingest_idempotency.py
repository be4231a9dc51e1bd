"""``Idempotency-Key`` over HTTP: the first response is replayed, never a second write."""

from __future__ import annotations

import json

import pytest

from tests.functional.harness import Credentials, Harness, example_body

KEY = "8f14e45f-ceea-467f-a0e6-b8e2e0a2a4c1"


def accepted_batches(harness: Harness) -> int:
    count: int = harness.scalar("SELECT COUNT(*) FROM batches WHERE http_status = 200")
    return count


def test_same_key_and_body_replays_the_first_response(harness: Harness, token: str) -> None:
    raw = json.dumps(example_body()).encode()
    first = harness.post_kpi(token, content=raw, headers={"Idempotency-Key": KEY})
    assert first.status_code == 200, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert (first.json()["created"], first.json()["unchanged"]) == (6, 0)

    again = harness.post_kpi(token, content=raw, headers={"Idempotency-Key": KEY})
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    # Byte for byte: same batch_id and the first request's counts (6 created,
    # where a real second write would have said 6 unchanged).
    assert again.content == first.content
    assert again.headers["content-type"].startswith("application/json")
    assert "X-RateLimit-Remaining" in again.headers

    assert accepted_batches(harness) == 1
    rows = harness.rows("SELECT client_pk, key, status FROM idempotency_keys")
    assert [(r[1], r[2]) for r in rows] == [(KEY, 200)]
    stored_key = harness.scalar("SELECT idempotency_key FROM batches")
    assert stored_key == KEY


def test_replay_is_not_a_write_even_after_the_data_changed(harness: Harness, token: str) -> None:
    raw = json.dumps(example_body()).encode()
    first = harness.post_kpi(token, content=raw, headers={"Idempotency-Key": KEY})
    changed = example_body()
    changed["data"][0]["elements"][0]["value"] = "7"
    assert harness.post_kpi(token, changed).status_code == 200  # no key: a real write
    replay = harness.post_kpi(token, content=raw, headers={"Idempotency-Key": KEY})
    assert replay.content == first.content
    value = harness.scalar("SELECT value FROM data_points WHERE element_id = '1'")
    assert value == 7.0  # the retry did not put the old value back
    assert accepted_batches(harness) == 2


def test_same_key_with_another_body_is_422_naming_the_header(harness: Harness, token: str) -> None:
    first = harness.post_kpi(token, example_body(), headers={"Idempotency-Key": KEY})
    assert first.status_code == 200
    changed = example_body()
    changed["context"] = "other"
    response = harness.post_kpi(token, changed, headers={"Idempotency-Key": KEY})
    assert response.status_code == 422, response.text
    doc = response.json()
    assert list(doc["errors"]) == ["Idempotency-Key"]
    assert "Idempotency-Key" in doc["message"] and KEY in doc["message"]
    assert "Idempotent-Replayed" not in response.headers
    assert accepted_batches(harness) == 1
    assert harness.scalar("SELECT COUNT(*) FROM data_points WHERE context = 'other'") == 0


def test_keys_belong_to_one_client(harness: Harness, token: str, creds: Credentials) -> None:
    other = harness.token(harness.client())
    first = harness.post_kpi(token, example_body(), headers={"Idempotency-Key": KEY})
    second = harness.post_kpi(other, example_body(), headers={"Idempotency-Key": KEY})
    assert first.status_code == second.status_code == 200
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["batch_id"] != first.json()["batch_id"]
    # The second client's write really happened: same elements, so unchanged.
    assert (second.json()["created"], second.json()["unchanged"]) == (0, 6)
    # And another body under the same key is fine for another client.
    changed = example_body()
    changed["context"] = "hr"
    third = harness.token(harness.client())
    assert harness.post_kpi(third, changed, headers={"Idempotency-Key": KEY}).status_code == 200
    assert accepted_batches(harness) == 3
    assert harness.scalar("SELECT COUNT(*) FROM idempotency_keys") == 3


def test_without_a_key_every_request_is_a_write(harness: Harness, token: str) -> None:
    raw = json.dumps(example_body()).encode()
    first = harness.post_kpi(token, content=raw)
    second = harness.post_kpi(token, content=raw)
    assert first.json()["batch_id"] != second.json()["batch_id"]
    assert accepted_batches(harness) == 2
    assert harness.scalar("SELECT COUNT(*) FROM idempotency_keys") == 0


def test_a_rejected_request_does_not_use_up_its_key(harness: Harness, token: str) -> None:
    bad = example_body()
    bad["data"][0]["elements"][0]["value"] = "1,5"
    assert harness.post_kpi(token, bad, headers={"Idempotency-Key": KEY}).status_code == 422
    fixed = harness.post_kpi(token, example_body(), headers={"Idempotency-Key": KEY})
    assert fixed.status_code == 200, fixed.text
    assert "Idempotent-Replayed" not in fixed.headers
    assert fixed.json()["created"] == 6


@pytest.mark.parametrize("key", ["k" * 256, "", "tab\there"])
def test_bad_keys_are_422(harness: Harness, token: str, key: str) -> None:
    response = harness.post_kpi(token, example_body(), headers={"Idempotency-Key": key})
    assert response.status_code == 422, response.text
    doc = response.json()
    assert list(doc["errors"]) == ["Idempotency-Key"]
    assert "255" in doc["message"]
    assert accepted_batches(harness) == 0
    assert harness.scalar("SELECT COUNT(*) FROM data_points") == 0


def test_longest_key_is_accepted(harness: Harness, token: str) -> None:
    key = "k" * 255
    first = harness.post_kpi(token, example_body(), headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    again = harness.post_kpi(token, example_body(), headers={"Idempotency-Key": key})
    assert again.headers["Idempotent-Replayed"] == "true"
