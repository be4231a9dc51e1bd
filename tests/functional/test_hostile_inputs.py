"""Hostile requests against a real ``kpihub serve``: each is refused with a 4xx, the
server's memory stays bounded, and other clients are served meanwhile and afterwards.

Memory is read from ``/proc/PID/status`` of the server process: ``VmHWM`` (the peak
resident set) may grow by at most ``MEMORY_BOUND`` over the whole module, while the
inputs would need far more if they were buffered or inflated whole (a 1 GiB gzip
bomb, a 16 MiB header).
"""

from __future__ import annotations

import gzip
import json
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from kpihub.settings import Settings
from tests.batches import one_element_batch
from tests.functional.server import Kpihub, ServerProcess, get_token, new_client

pytestmark = pytest.mark.slow

TENANT = "acme"
INTEGRATION = "acme-pos"
# Seconds; the slow uploads below would take 100 s. The body's deadline is the longer,
# so a 408 naming it shows the head's deadline ended when the head was complete.
BODY_READ_TIMEOUT = 3
HEADER_READ_TIMEOUT = 1
MEMORY_BOUND = 64 << 20
HEAD_LIMIT: int = Settings.model_fields["max_header_bytes"].default
BODY_LIMIT: int = Settings.model_fields["max_body_bytes"].default
KPI_PATH = "/api/external/v1/kpi"


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> Kpihub:
    cli = Kpihub(
        tmp_path_factory.mktemp("hostile"),
        module_database_url,
        body_read_timeout=str(BODY_READ_TIMEOUT),
        header_read_timeout=str(HEADER_READ_TIMEOUT),
        rate_limit="100000",
        auth_failure_limit_per_address="100000",
    )
    cli.run("tenant", "create", TENANT)
    cli.run("integration", "create", "--tenant", TENANT, INTEGRATION)
    return cli


def memory(server: ServerProcess) -> dict[str, int]:
    """VmRSS and VmHWM of the server process, in bytes."""
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/status", encoding="ascii") as fh:
        fields = dict(line.split(":", 1) for line in fh)
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}


@dataclass
class Target:
    server: ServerProcess
    token: str
    baseline: dict[str, int]
    sent: int = 0

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "Host": f"{TENANT}.localhost:{self.server.port}",
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            **extra,
        }

    def post(self, body: bytes, **headers: str) -> httpx.Response:
        with httpx.Client(base_url=self.server.base_url, timeout=60) as http:
            return http.post(
                KPI_PATH,
                content=body,
                headers=self.headers(**{"Content-Type": "application/json", **headers}),
            )

    def serves_others(self) -> None:
        """A normal batch from a fresh connection is stored."""
        self.sent += 1
        batch = one_element_batch(INTEGRATION, "u", id=f"other-{self.sent}")
        ok = self.post(json.dumps(batch).encode())
        assert ok.status_code == 200, ok.text
        assert ok.json()["created"] == 1

    def memory_is_bounded(self) -> None:
        now = memory(self.server)
        for key in ("VmRSS", "VmHWM"):
            grown = now[key] - self.baseline[key]
            assert grown < MEMORY_BOUND, f"{key} grew by {grown >> 20} MiB: {now}"


@pytest.fixture(scope="module")
def target(cli: Kpihub, server: ServerProcess) -> Target:
    creds = new_client(cli, TENANT)
    with server.http(TENANT) as http:
        token = get_token(http, creds)
    t = Target(server, token, {})
    t.serves_others()  # warm: the first batch loads what every later one uses
    t.baseline = memory(server)
    return t


@pytest.fixture
def hostile(target: Target) -> Iterator[Target]:
    yield target
    target.memory_is_bounded()
    target.serves_others()


def element_body(value: str) -> bytes:
    """A one-element batch whose ``value`` is the raw JSON text ``value``."""
    doc = json.dumps(one_element_batch(INTEGRATION, "u", value="VALUE"))
    return doc.replace('"VALUE"', value).encode()


# -- bodies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        pytest.param(b"[" * 100_000, 400, "nested too deeply", id="100k-levels-of-arrays"),
        pytest.param(b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400, "nested", id="100k-objects"),
        pytest.param(element_body("1e400"), 422, "finite", id="1e400"),
        pytest.param(element_body("9" * 5000), 400, "too many digits", id="5000-digit-integer"),
        pytest.param(element_body("0." + "1" * 100_000), 200, "", id="100k-digit-fraction"),
        pytest.param(
            element_body('"\xff\xfe"').replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe"),
            400,
            "UTF-8",
            id="invalid-utf8",
        ),
        pytest.param(element_body('"1\x00"'), 400, "control character", id="raw-nul-byte"),
        pytest.param(element_body('"1\\u0000"'), 400, "NUL", id="escaped-nul"),
    ],
)
def test_hostile_body_is_refused(hostile: Target, body: bytes, status: int, says: str) -> None:
    response = hostile.post(body)
    assert response.status_code == status, response.text
    assert says in response.text


def test_object_with_100k_keys_is_refused(hostile: Target) -> None:
    doc = one_element_batch(INTEGRATION, "u")
    doc["data"][0]["elements"][0].update({f"k{i}": i for i in range(100_000)})
    doc.update({f"k{i}": i for i in range(100_000)})
    response = hostile.post(json.dumps(doc).encode())
    # Unknown keys are ignored (the wire format is open to additions); the batch itself
    # is valid, so it is stored once, without the junk.
    assert response.status_code == 200, response.text
    wide = {f"k{i}": i for i in range(100_000)}
    response = hostile.post(json.dumps(wide).encode())
    assert response.status_code == 422, response.text
    assert set(response.json()["errors"]) == {"type", "version", "context", "data"}


def test_gzip_bomb_stops_at_the_decompressed_limit(hostile: Target) -> None:
    # 1 GiB of NULs as 16 gzip members of 64 MiB each (one stream, RFC 1952 §2.2),
    # about 1 MiB on the wire.
    bomb = gzip.compress(bytes(64 << 20), 9) * 16
    assert len(bomb) < 2 << 20
    response = hostile.post(bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413, response.text
    assert response.json()["limit"] == BODY_LIMIT


def test_token_endpoint_refuses_deep_json(hostile: Target) -> None:
    with httpx.Client(base_url=hostile.server.base_url, timeout=60) as http:
        response = http.post(
            "/oauth/token",
            content=b"[" * 60_000,
            headers={"Host": hostile.headers()["Host"], "Content-Type": "application/json"},
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


# -- connections ---------------------------------------------------------------------


def connect(target: Target) -> socket.socket:
    return socket.create_connection(("127.0.0.1", target.server.port), timeout=30)


def answered(sock: socket.socket, wait: float) -> bool:
    readable, _, _ = select.select([sock], [], [], wait)
    return bool(readable)


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and raw bytes of the one response on ``sock``, read until the server
    closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data[9:12]), data


def head(target: Target, *lines: bytes, path: str = KPI_PATH) -> bytes:
    host = f"Host: {TENANT}.localhost:{target.server.port}".encode()
    return b"\r\n".join([f"POST {path} HTTP/1.1".encode(), host, *lines]) + b"\r\n"


def flood(target: Target, chunks: Iterator[bytes]) -> tuple[int, bytes]:
    """Send ``chunks`` until the server answers, then read the answer.

    Each chunk is followed by a pause, so the server has read all that was sent when it
    closes the connection (unread data would turn its close into a reset, losing the
    answer). Past four times the head limit the server has failed already; the rest is
    sent without pauses.
    """
    sent = 0
    with connect(target) as sock:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
                sent += len(chunk)
                if answered(sock, 0.05 if sent < 4 * HEAD_LIMIT else 0):
                    break
            else:
                sock.sendall(b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection: its answer (if any) is read below
        return read_response(sock)


def test_one_huge_header_is_431(hostile: Target) -> None:
    def chunks() -> Iterator[bytes]:
        yield head(hostile) + b"X-Junk: "
        for _ in range(4096):  # 16 MiB
            yield b"a" * 4096

    status, raw = flood(hostile, chunks())
    assert status == 431, raw[:300]
    assert b"connection: close" in raw.lower()
    assert f'"limit":{HEAD_LIMIT}'.encode() in raw.replace(b" ", b"")


def test_many_headers_are_431(hostile: Target) -> None:
    def chunks() -> Iterator[bytes]:
        yield head(hostile)
        for start in range(0, 100_000, 256):  # about 4 KiB a chunk
            yield b"".join(b"X-Flood-%d: v\r\n" % i for i in range(start, start + 256))

    status, raw = flood(hostile, chunks())
    assert status == 431, raw[:300]


def test_nul_byte_in_a_header_is_400(hostile: Target) -> None:
    status, raw = flood(hostile, iter([head(hostile, b"X-Junk: a\x00b", b"") + b"\r\n"]))
    assert status == 400, raw[:300]


def trickle(sock: socket.socket, byte: bytes, target: Target, most: int = 1000) -> int:
    """Send ``byte`` every 0.1 s until the server answers (``most`` would take 100 s);
    another client is served while this goes on. The number of bytes sent."""
    sent = 0
    while sent < most and not answered(sock, 0.1):
        sock.sendall(byte)
        sent += 1
        if sent == 3:
            target.serves_others()
    assert sent >= 3, "answered before the trickle began"
    assert sent < most, "the server waited for the whole trickle"
    return sent


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        (KPI_PATH, "application/json"),
        ("/oauth/token", "application/x-www-form-urlencoded"),
        ("/login", "application/x-www-form-urlencoded"),  # the dashboard's sign-in form
    ],
)
def test_slow_upload_is_cut_off_with_408(hostile: Target, path: str, media_type: str) -> None:
    size = 1000
    with connect(hostile) as sock:
        sock.sendall(
            head(
                hostile,
                f"Authorization: Bearer {hostile.token}".encode(),
                f"Content-Type: {media_type}".encode(),
                f"Content-Length: {size}".encode(),
                b"",
                path=path,
            )
        )
        trickle(sock, b" ", hostile, most=size)
        status, raw = read_response(sock)  # ... and closes the connection after its answer
    assert status == 408, raw[:300]
    assert b"connection: close" in raw.lower()
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert body["timeout"] == BODY_READ_TIMEOUT
    assert f"within {BODY_READ_TIMEOUT} seconds" in body["message"]


def test_slow_headers_are_cut_off_with_408(hostile: Target) -> None:
    with connect(hostile) as sock:
        sock.sendall(head(hostile) + b"X-Slow: ")
        trickle(sock, b"a", hostile)
        status, raw = read_response(sock)
    assert status == 408, raw[:300]
    assert b"connection: close" in raw.lower()
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert body["timeout"] == HEADER_READ_TIMEOUT
    assert "request line and headers" in body["message"]


def test_an_idle_connection_is_closed(hostile: Target) -> None:
    with connect(hostile) as sock:
        hostile.serves_others()  # while this connection holds a socket and says nothing
        assert answered(sock, 15 * HEADER_READ_TIMEOUT), "the idle connection stayed open"
        assert sock.recv(1) == b""  # closed without an answer: no request began


def test_the_server_still_answers_every_client(hostile: Target) -> None:
    # After everything above, in this module's order: still the same process, serving.
    assert hostile.server.proc is not None and hostile.server.proc.poll() is None
    with httpx.Client(base_url=hostile.server.base_url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200


def test_expect_100_continue_is_answered_before_the_body_is_sent(hostile: Target) -> None:
    # The client waits for the interim answer before it sends the body.
    body = json.dumps(one_element_batch(INTEGRATION, "u", id="after-continue")).encode()
    with connect(hostile) as sock:
        sock.sendall(
            head(
                hostile,
                f"Authorization: Bearer {hostile.token}".encode(),
                b"Content-Type: application/json",
                f"Content-Length: {len(body)}".encode(),
                b"Expect: 100-continue",
                b"Connection: close",
            )
            + b"\r\n"
        )
        assert answered(sock, 10), "no 100 Continue within 10 s"
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
        sock.sendall(body)
        status, data = read_response(sock)
    assert status == 200, data
    assert b'"created":1' in data.replace(b" ", b""), data
