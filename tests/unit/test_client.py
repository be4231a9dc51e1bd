"""The client SDK against ``httpx.MockTransport`` fakes: no network, a fake clock."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina

from kpihub.client import (
    Ack,
    AsyncKpiClient,
    AuthenticationError,
    Batch,
    KpiClient,
    KpiConnectionError,
    Outbox,
    Row,
    Throttle,
    ValidationError,
    check_batches,
    make_batches,
    read_input,
    rows_of,
    token_claims,
    validate,
)

URL = "https://acme.example.com"
HEADER = {"type": "acme-pos", "version": "1.0.0", "context": "sales"}


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    """stamina's test mode: retries happen, their waits do not."""
    with stamina.set_testing(True, attempts=5, cap=True):
        yield


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def element(i: int, value: object = "1.5") -> dict[str, Any]:
    return {
        "id": i,
        "kpi": "sales",
        "object_type": "number",
        "value": value,
        "timestamp": 1568120963,
    }


def data(n: int, per_user: int = 10) -> list[dict[str, Any]]:
    return [
        {"user_id": str(u), "elements": [element(u * per_user + k) for k in range(per_user)]}
        for u in range(n // per_user)
    ]


@dataclass
class FakeServer:
    """A token endpoint and a KPI endpoint; ``script`` scripts the KPI answers in turn."""

    clock: Clock
    script: list[Callable[[httpx.Request], httpx.Response]] = field(default_factory=list)
    expires_in: int = 3600
    tokens: int = 0
    kpi: list[httpx.Request] = field(default_factory=list)
    limit: int | None = None  # a fixed-window rate limit per ``window`` seconds
    window: float = 60.0
    window_start: float | None = None
    used: int = 0
    too_many: int = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.tokens += 1
            return httpx.Response(
                200,
                json={
                    "token_type": "Bearer",
                    "access_token": f"tok{self.tokens}",
                    "expires_in": self.expires_in,
                },
            )
        self.kpi.append(request)
        if self.script:
            return self.script.pop(0)(request)
        headers = self.count()
        if headers is None:
            self.too_many += 1
            return httpx.Response(429, json={"message": "Too Many Attempts."})
        return ok(request, headers)

    def count(self) -> dict[str, str] | None:
        if self.limit is None:
            return {}
        now = self.clock()
        if self.window_start is None or now >= self.window_start + self.window:
            self.window_start, self.used = now, 0
        if self.used >= self.limit:
            return None
        self.used += 1
        reset_in = self.window_start + self.window - now
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - self.used),
            "RateLimit-Policy": f'"api";q={self.limit};w={int(self.window)}',
            "RateLimit": f'"api";r={self.limit - self.used};t={-int(-reset_in // 1)}',
        }

    def elements(self, request: httpx.Request) -> list[dict[str, Any]]:
        return [e for entry in body(request)["data"] for e in entry["elements"]]


def body(request: httpx.Request) -> dict[str, Any]:
    raw = request.content
    if request.headers.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
    doc: dict[str, Any] = json.loads(raw)
    return doc


def ok(request: httpx.Request, headers: dict[str, str] | None = None) -> httpx.Response:
    n = sum(len(e["elements"]) for e in body(request)["data"])
    return httpx.Response(
        200,
        json={
            "status": "ok",
            "batch_id": f"b{n}",
            "received": n,
            "created": n,
            "updated": 0,
            "unchanged": 0,
        },
        headers=headers or {},
    )


def status(code: int, **kwargs: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(code, **kwargs)


def fail_network(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> FakeServer:
    return FakeServer(clock)


def client(server: FakeServer, clock: Clock, **options: Any) -> KpiClient:
    options.setdefault("throttle", Throttle(enabled=False))
    return KpiClient(
        URL,
        "kh_test_x",
        "khs_secret",
        transport=httpx.MockTransport(server.handler),
        clock=clock,
        sleep=clock.sleep,
        **options,
    )


def test_send_returns_a_typed_ack_and_gzips(server: FakeServer, clock: Clock) -> None:
    with client(server, clock) as kpi:
        ack = kpi.send(**HEADER, data=data(20))
    assert ack == Ack(("b20",), 20, 20, 0, 0)
    assert ack.batch_id == "b20"
    request = server.kpi[0]
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["authorization"] == "Bearer tok1"
    assert request.headers["idempotency-key"].startswith("kh-")
    assert body(request)["type"] == "acme-pos"
    assert body(request)["data"] == data(20)


def test_token_is_cached_then_refreshed_before_it_expires(server: FakeServer, clock: Clock) -> None:
    server.expires_in = 100
    with client(server, clock) as kpi:
        kpi.send(**HEADER, data=data(10))
        clock.now += 80
        kpi.send(**HEADER, data=data(10))
        assert server.tokens == 1
        clock.now += 11  # 9 s before expiry: inside the refresh margin (expires_in / 10)
        kpi.send(**HEADER, data=data(10))
    assert server.tokens == 2
    assert server.kpi[-1].headers["authorization"] == "Bearer tok2"


def test_a_401_gets_one_new_token_and_one_more_try(server: FakeServer, clock: Clock) -> None:
    server.script = [status(401, json={"message": "The token has been revoked."})]
    with client(server, clock) as kpi:
        assert kpi.send(**HEADER, data=data(10)).received == 10
    assert server.tokens == 2
    assert [r.headers["authorization"] for r in server.kpi] == ["Bearer tok1", "Bearer tok2"]

    server.script = [status(401, json={"message": "no"}), status(401, json={"message": "still no"})]
    with client(server, clock) as kpi, pytest.raises(AuthenticationError) as caught:
        kpi.send(**HEADER, data=data(10))
    assert caught.value.status == 401
    assert "still no" in caught.value.message


def test_large_inputs_are_split_by_count(server: FakeServer, clock: Clock) -> None:
    with client(server, clock, max_elements=25) as kpi:
        ack = kpi.send(**HEADER, data=data(100))
    assert [len(server.elements(r)) for r in server.kpi] == [25, 25, 25, 25]
    assert ack.received == 100 and ack.requests == 4
    sent = [e["id"] for r in server.kpi for e in server.elements(r)]
    assert sent == list(range(100))
    # an entry cut in two keeps its owner on both sides
    assert body(server.kpi[0])["data"][-1] == {
        "user_id": "2",
        "elements": data(30)[2]["elements"][:5],
    }
    assert body(server.kpi[1])["data"][0]["user_id"] == "2"


def test_large_inputs_are_split_by_bytes() -> None:
    rows = [Row(element(i, "x" * 200), user_id=str(i % 3)) for i in range(300)]
    batches = list(make_batches(HEADER, rows, max_elements=10_000, max_bytes=10_000))
    assert len(batches) > 5
    assert all(len(b.body) <= 10_000 for b in batches)
    assert sum(b.elements for b in batches) == 300
    for b in batches:
        doc = json.loads(b.body)
        assert sum(len(e["elements"]) for e in doc["data"]) == b.elements
    ids = [
        e["id"] for b in batches for entry in json.loads(b.body)["data"] for e in entry["elements"]
    ]
    assert ids == list(range(300))
    with pytest.raises(ValueError, match="over the limit"):
        list(make_batches(HEADER, rows, max_bytes=100))


def test_batches_point_errors_back_at_the_input() -> None:
    rows = [
        Row(element(i, "1,5" if i == 7 else "1"), "u", None, f"line {i + 2}") for i in range(10)
    ]
    batches = list(make_batches(HEADER, rows, max_elements=4))
    problems = check_batches(batches)
    assert [(p.where, p.path) for p in problems] == [("line 9", "data.0.elements.3.value")]
    assert "Use '.' as the decimal separator" in str(problems[0])


@pytest.mark.parametrize(
    "failure",
    [
        status(503, json={"message": "The store is unavailable."}),
        status(500, text="boom"),
        status(429, json={"message": "Too Many Attempts."}, headers={"Retry-After": "3"}),
        fail_network,
    ],
    ids=["503", "500", "429", "network"],
)
def test_retries_keep_the_idempotency_key(
    server: FakeServer, clock: Clock, failure: Callable[[httpx.Request], httpx.Response]
) -> None:
    server.script = [failure, failure]
    with client(server, clock) as kpi:
        ack = kpi.send(**HEADER, data=data(10))
        assert kpi.stats.retries == 2
    assert ack.received == 10
    assert len(server.kpi) == 3
    assert len({r.headers["idempotency-key"] for r in server.kpi}) == 1


def test_retry_after_becomes_the_backoff() -> None:
    from kpihub.client._core import retry_hook
    from kpihub.client._errors import api_error

    limited = api_error(429, b'{"message":"Too Many Attempts."}', {"retry-after": "7"})
    assert retry_hook(limited) == 7.0
    assert retry_hook(api_error(502, b"", {})) is True
    assert retry_hook(api_error(408, b"{}", {})) is True  # the body arrived too slowly
    assert retry_hook(api_error(422, b"{}", {})) is False
    assert retry_hook(httpx.ReadTimeout("slow")) is True


def test_validation_errors_are_not_retried_and_carry_the_fields(
    server: FakeServer, clock: Clock
) -> None:
    errors = {"data.0.elements.1.value": ["The data.0.elements.1.value field must be a number."]}
    server.script = [status(422, json={"message": "The given data was invalid.", "errors": errors})]
    with client(server, clock, max_elements=10) as kpi, pytest.raises(ValidationError) as caught:
        kpi.send(**HEADER, data=data(30))
    assert len(server.kpi) == 1
    assert caught.value.status == 422
    assert caught.value.errors == errors
    assert caught.value.acknowledged == Ack((), 0, 0, 0, 0)


def test_what_was_acknowledged_before_a_failure_is_on_the_error(
    server: FakeServer, clock: Clock
) -> None:
    server.script = [ok, status(422, json={"message": "bad", "errors": {"type": ["bad"]}})]
    with client(server, clock, max_elements=10) as kpi, pytest.raises(ValidationError) as caught:
        kpi.send(**HEADER, data=data(30))
    assert caught.value.acknowledged is not None
    assert caught.value.acknowledged.received == 10


def test_network_errors_past_the_retries_are_typed(server: FakeServer, clock: Clock) -> None:
    server.script = [fail_network] * 10
    with client(server, clock) as kpi, pytest.raises(KpiConnectionError) as caught:
        kpi.send(**HEADER, data=data(10))
    assert "Could not reach https://acme.example.com" in caught.value.message
    assert len(server.kpi) == 5  # stamina's test mode caps attempts at 5


def test_throttle_keeps_a_long_push_under_the_limit(server: FakeServer, clock: Clock) -> None:
    """200 requests against 15 per 5 s: the client waits instead of meeting a 429."""
    server.limit, server.window = 15, 5.0
    with client(server, clock, throttle=Throttle(clock=clock), max_elements=10) as kpi:
        kpi.send(**HEADER, data=data(2000))
        waited = kpi.stats.throttled_seconds
    assert len(server.kpi) == 200
    assert server.too_many == 0
    # 200 requests at 15 per 5 s need at least 13 full windows
    assert waited >= 13 * 5 - 5
    assert waited < 200 / 15 * 5 * 1.6


def test_throttle_starts_at_180_per_minute_then_follows_the_server() -> None:
    clock = Clock()
    throttle = Throttle(clock=clock)
    assert throttle.reserve() == 0
    assert throttle.reserve() == pytest.approx(60 / 180)
    clock.now += 1
    throttle.update(
        {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "RateLimit": '"api";r=0;t=4'}
    )
    assert throttle.reserve() == pytest.approx(4.05)
    clock.now += 10
    throttle.update({"Retry-After": "2", "X-RateLimit-Remaining": "0"})
    assert throttle.reserve() == pytest.approx(2.05)


def test_async_client_shares_the_behaviour(server: FakeServer, clock: Clock) -> None:
    server.script = [status(503), fail_network]

    async def sleep(seconds: float) -> None:
        clock.sleep(seconds)

    async def main() -> Ack:
        async with AsyncKpiClient(
            URL,
            "kh_test_x",
            "khs_secret",
            transport=httpx.MockTransport(server.handler),
            clock=clock,
            sleep=sleep,
            max_elements=5,
        ) as kpi:
            assert await kpi.token() == "tok1"
            return await kpi.send(**HEADER, data=data(20))

    ack = asyncio.run(main())
    assert ack.received == 20 and ack.requests == 4
    assert server.tokens == 1
    assert server.kpi[0].headers["idempotency-key"] == server.kpi[2].headers["idempotency-key"]


def test_validate_uses_the_servers_rules() -> None:
    body = {**HEADER, "data": [{"user_id": "1", "elements": [element(1, "1,5"), element(1)]}]}
    errors = validate(body)
    assert set(errors) == {"data.0.elements.0.value", "data.0.elements.1.id"}
    assert validate({**HEADER, "data": data(10)}) == {}


def test_token_claims_are_read_without_verifying() -> None:
    import base64

    payload = base64.urlsafe_b64encode(json.dumps({"env": "testing"}).encode()).rstrip(b"=")
    assert token_claims(f"h.{payload.decode()}.s") == {"env": "testing"}
    assert token_claims("not a jwt") == {}


def test_outbox_keeps_batches_until_done(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    batches = list(make_batches(HEADER, rows_of(data(30)), max_elements=10))
    with Outbox(path) as box:
        assert box.add("t", batches) == 3
        assert box.count("t") == (3, 30)
        first = next(box.pending("t"))
        box.done(first[0])
    with Outbox(path) as box:  # a new process
        left = list(box.pending("t"))
        assert [b.key for _, b in left] == [b.key for b in batches[1:]]
        assert left[0][1].body == batches[1].body
        assert left[0][1].origin("data.0.elements.0.value") == "data.1.elements.0"
        box.reject(left[0][0], 422, {"type": ["bad"]})
        assert box.count("t") == (1, 10)
        assert box.count("other") == (0, 0)
        assert box.rejected() == 1


def test_inputs_csv_and_ndjson(tmp_path: Path) -> None:
    csv_file = tmp_path / "d.csv"
    csv_file.write_text(
        "user_id,location_id,id,kpi,value,units,timestamp,date_from,date_to\n"
        "1,,10,sales,1.5,Eur,1568120963,,\n"
        ",3,11,sales,2,,2019-09-10 13:09:23,,\n"
    )
    found = read_input(csv_file)
    assert found.problems == []
    assert [(r.user_id, r.location_id, r.origin) for r in found.rows] == [
        ("1", None, "line 2"),
        (None, "3", "line 3"),
    ]
    assert found.rows[0].element == {
        "object_type": "number",
        "id": "10",
        "kpi": "sales",
        "value": "1.5",
        "units": "Eur",
        "timestamp": "1568120963",
    }
    nd = tmp_path / "d.ndjson"
    nd.write_text(
        json.dumps({"user_id": 1, **element(1)})
        + "\n\n"
        + json.dumps({"location_id": "9", "elements": [element(2), element(3)]})
        + "\n"
        + "{oops\n[1]\n"
    )
    found = read_input(nd)
    assert [r.origin for r in found.rows] == ["line 1", "line 3, element 0", "line 3, element 1"]
    assert len(found.problems) == 2
    assert found.problems[0].startswith("line 4, column 2: not valid JSON")
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,kpi\n1,x\n")
    assert "the header lacks value, timestamp, user_id" in read_input(bad_header).problems[0]


def test_batch_origin_of_paths() -> None:
    batch = Batch(b"{}", 3, "k", (("line 2", "line 3"), ("line 9",)))
    assert batch.origin("data.0.elements.1.value") == "line 3"
    assert batch.origin("data.1.user_id") == "line 9"
    assert batch.origin("type") is None
    assert batch.origin("data.5.elements.0.id") is None
