"""``POST /oauth/token`` under attack: enumerating clients, guessing secrets."""

from __future__ import annotations

import hmac
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kpihub import admin
from kpihub.domain import Environment
from kpihub.oauth import secrets
from kpihub.oauth.secrets import new_client_id, new_secret
from tests.functional.conftest import app_on
from tests.functional.harness import Credentials, Harness
from tests.security.timing import compare, measure_pairs

TOKEN_URL = "http://acme.localhost/oauth/token"
PAIRS = 500


def _guess(creds: Credentials, secret: str | None = None) -> Credentials:
    return Credentials(creds.tenant, creds.client_id, secret or new_secret(), creds.environment)


def _unknown(creds: Credentials) -> Credentials:
    return Credentials(
        creds.tenant, new_client_id(creds.environment), new_secret(), creds.environment
    )


# -- enumeration: an unknown client and a wrong secret cannot be told apart ------------


@pytest.fixture
def unthrottled(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    many = 10_000_000
    with app_on(
        tmp_path,
        database_url,
        integration=False,
        token_rate_limit_per_client=many,
        token_rate_limit_per_address=many,
        auth_failure_limit_per_address=many,
    ) as h:
        yield h


def test_unknown_client_and_wrong_secret_take_the_same_time(unthrottled: Harness) -> None:
    h = unthrottled
    creds = h.client()
    unknown, wrong = _unknown(creds), _guess(creds)

    def attempt(who: Credentials) -> Any:
        def call() -> None:
            assert h.token_response(who).status_code == 401

        return call

    measure_pairs(attempt(unknown), attempt(wrong), pairs=50, seed=1)  # warm caches and pools
    result = measure_pairs(attempt(unknown), attempt(wrong), pairs=PAIRS, seed=2)
    print(result)  # shown with -rP: how close the two kinds are
    assert not result.distinguishable(), str(result)


def test_the_timing_comparison_tells_a_difference_from_noise() -> None:
    # The method above, on made-up samples with heavy noise and spikes (a loaded machine):
    # equal kinds pass, a kind that is a quarter slower is caught.
    rng = random.Random(7)

    def noisy(base: float) -> float:
        spike = 0.02 if rng.random() < 0.03 else 0.0
        return base * rng.lognormvariate(0, 0.3) + spike

    same_a = [noisy(0.002) for _ in range(PAIRS)]
    same_b = [noisy(0.002) for _ in range(PAIRS)]
    slower = [noisy(0.0025) for _ in range(PAIRS)]
    assert not compare(same_a, same_b).distinguishable(), str(compare(same_a, same_b))
    assert compare(slower, same_b).distinguishable(), str(compare(slower, same_b))
    assert compare(same_b, slower).distinguishable(), str(compare(same_b, slower))


class _CountingHmac:
    """The ``hmac`` module as ``kpihub.oauth.secrets`` sees it, counting what it does."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def new(self, key: bytes, msg: bytes, digestmod: Any) -> hmac.HMAC:
        self.calls.append("hmac")
        return hmac.new(key, msg, digestmod)

    def compare_digest(self, a: bytes, b: bytes) -> bool:
        self.calls.append("compare_digest")
        return hmac.compare_digest(a, b)


def test_every_failed_client_authentication_does_the_same_work(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = harness.client()
    harness.tenant("other")
    theirs = harness.client("other")
    revoked = harness.client()
    harness.run(lambda: admin.revoke_client(harness.storage, revoked.client_id))
    rotated = harness.client()
    harness.run(
        lambda: admin.rotate_secret(harness.storage, harness.services.server_key, rotated.client_id)
    )
    counting = _CountingHmac()
    monkeypatch.setattr(secrets, "hmac", counting)
    attempts = {
        "unknown client": _unknown(creds),
        "wrong secret": _guess(creds),
        "wrong secret, two secrets during rotation": _guess(rotated),
        "client of another tenant": Credentials(
            "acme", theirs.client_id, theirs.client_secret, theirs.environment
        ),
        "revoked client, right secret": revoked,
        "right secret": creds,
    }
    work: dict[str, list[str]] = {}
    bodies: dict[str, bytes] = {}
    for name, who in attempts.items():
        counting.calls.clear()
        response = harness.token_response(who)
        assert response.status_code == (200 if name == "right secret" else 401), name
        work[name] = list(counting.calls)
        if response.status_code == 401:
            bodies[name] = response.content
    # One HMAC of the secret, then both secret slots compared, whoever asks.
    expected = ["hmac", "compare_digest", "compare_digest"]
    assert all(calls == expected for calls in work.values()), work
    # And one answer for all of them.
    assert len(set(bodies.values())) == 1, bodies


# -- guessing: brute force is throttled -------------------------------------------------


def test_brute_force_from_one_address_is_throttled(tmp_path: Path, database_url: str) -> None:
    with app_on(tmp_path, database_url, integration=False, auth_failure_limit_per_address=5) as h:
        creds = h.client()
        other = h.client(environment=Environment.PRODUCTION)
        for _ in range(5):
            assert h.token_response(_guess(creds)).status_code == 401
        for who in (_guess(creds), _unknown(creds), creds, other):
            # Even the right secret: guessing from here learns nothing until the window ends.
            limited = h.token_response(who)
            assert limited.status_code == 429, limited.text
            assert int(limited.headers["Retry-After"]) >= 1
            assert limited.headers["X-RateLimit-Reset"]
            assert "access_token" not in limited.json()


def _from(h: Harness, creds: Credentials, address: str) -> httpx.Response:
    response: httpx.Response = h.http.post(
        TOKEN_URL,
        data={
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        },
        headers={"X-Forwarded-For": address},
    )
    return response


def test_brute_force_on_one_client_from_many_addresses_is_throttled(
    tmp_path: Path, database_url: str
) -> None:
    # Behind a trusted proxy, so each guess really comes from another address.
    with app_on(
        tmp_path,
        database_url,
        integration=False,
        trust_forwarded_headers=True,
        token_rate_limit_per_client=5,
    ) as h:
        creds = h.client()
        bystander = h.client()
        for n in range(5):
            assert _from(h, _guess(creds), f"10.0.0.{n}").status_code == 401
        limited = _from(h, _guess(creds), "10.0.1.1")
        assert limited.status_code == 429, limited.text
        assert int(limited.headers["Retry-After"]) >= 1
        assert _from(h, creds, "10.0.1.2").status_code == 429
        # Another client is not affected.
        assert _from(h, bystander, "10.0.1.3").status_code == 200
