"""Path traversal: no request path or parameter reaches a file outside what is served.

The one file-serving route is the dashboard's ``/static/{path}``, which serves from a
list made at start-up; the time zone parameter names a file of the tz database; the
debugger's request ids are looked up in the store. Every traversal goes byte for byte
through a raw socket to a real server (HTTP clients normalise ``..`` and ``%2e%2e``
away before sending); the encoded ones also through the test client, as far as it
leaves them encoded.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from kpihub.web.static import STATIC_DIR
from tests.functional.conftest import make_settings
from tests.functional.harness import Harness, open_harness
from tests.functional.query_support import get
from tests.functional.server import Kpihub, running_server
from tests.functional.web_support import add_user, sign_in

ACME = "http://acme.localhost"
# Text of files an attacker would go for: the package's own code, templates and
# settings, the system's accounts. None of it may come back.
SECRET_TEXT = ("root:", "import ", "{% extends", "[project]", "PRIVATE KEY", "def ")
ENCODED = (
    "..%2Fstatic.py",
    "..%2F..%2Fsettings.py",
    "..%2Ftemplates%2Fbase.html",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
    "..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "%2Fetc%2Fpasswd",
    "vendor%2F..%2F..%2Fstatic.py",
    "vendor/..%2F..%2F..%2Fsettings.py",
    "..%5C..%5Cstatic.py",
    "..%5c..%5c..%5c..%5cetc%5cpasswd",
    "app.css%00.py",
    "%252e%252e%252fstatic.py",
    "....%2F%2F....%2F%2Fstatic.py",
    "%c0%ae%c0%ae%2fstatic.py",
    "app.css%2F..%2F..%2Fstatic.py",
)
LITERAL = (
    "/static/../static.py",
    "/static/../../kpihub/settings.py",
    "/static/../templates/base.html",
    "/static/../../../../../../../../etc/passwd",
    "/static//etc/passwd",
    "/static/vendor/../../static.py",
    "/static/./../static.py",
    "/static/..\\static.py",
    "/static/app.css/../../static.py",
)
ROUTES_NOT_FILES = ("/debugger/../../etc/passwd", "/debugger/../static/../../static.py")


def _refused(status: int, text: str, what: str) -> None:
    assert status == 404, (what, status, text[:300])
    for fragment in SECRET_TEXT:
        assert fragment not in text, (what, fragment)


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """An app on SQLite: static files involve no data, so one backend is enough."""
    with open_harness(make_settings(tmp_path_factory.mktemp("static"))) as h:
        yield h


def test_static_files_are_served_from_their_folder_only(lite: Harness) -> None:
    # The control: what is there is served, with a type that cannot be sniffed.
    served = lite.http.get(f"{ACME}/static/app.css")
    assert served.status_code == 200
    assert served.text == (STATIC_DIR / "app.css").read_text()
    assert served.headers["x-content-type-options"] == "nosniff"
    vendor = lite.http.get(f"{ACME}/static/vendor/chart.js.LICENSE.md")
    assert vendor.status_code == 200
    for path in ENCODED:
        response = lite.http.get(f"{ACME}/static/{path}")
        _refused(response.status_code, response.text, path)


def test_a_literal_dot_dot_path_is_refused_by_a_real_server(tmp_path: Path) -> None:
    cli = Kpihub(tmp_path)
    cli.run("tenant", "create", "acme")
    targets = [*LITERAL, *(f"/static/{path}" for path in ENCODED), *ROUTES_NOT_FILES]
    with running_server(cli) as server:
        for target in targets:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                # http.client sends the target byte for byte, dots and all (HTTP clients
                # such as httpx would normalise ``..`` away before sending).
                conn.request("GET", target, headers={"Host": f"acme.localhost:{server.port}"})
                answer = conn.getresponse()
                text = answer.read().decode(errors="replace")
            finally:
                conn.close()
            _refused(answer.status, text, target)
            if target.startswith("/static/") and not target.startswith("/static//"):
                assert text == "Not found", (target, text)  # the static route said no


def test_the_time_zone_parameter_reads_no_other_file(shared: Harness) -> None:
    token = shared.token(shared.client())
    base = {"kpi": "points", "interval": "day", "from": 1_727_740_800, "to": 1_727_827_200}
    assert get(shared, token, "/series", {**base, "tz": "Europe/Copenhagen"}).status_code == 200
    for tz in (
        "../../../../../../etc/passwd",
        "/etc/passwd",
        "/etc/localtime",
        "Europe/../../../../etc/passwd",
        "..\\..\\..\\etc\\passwd",
        "Europe/Copenhagen/../../../../../etc/passwd",
        "./UTC",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "UTC\x00",
    ):
        response = get(shared, token, "/series", {**base, "tz": tz})
        assert response.status_code == 422, (tz, response.text)
        assert "tz" in response.json()["errors"], tz
        assert "root:" not in response.text


def test_debugger_request_ids_are_not_paths(shared: Harness) -> None:
    add_user(shared, "ada@example.com")
    sign_in(shared, "ada@example.com")
    # (Literal ``..`` segments: in ROUTES_NOT_FILES, through the real server.)
    for batch_id in ("..%2F..%2Fetc%2Fpasswd", "..%5C..%5Cetc%5Cpasswd", "%00"):
        for suffix in ("", "/body"):
            response = shared.http.get(f"{ACME}/debugger/{batch_id}{suffix}")
            _refused(response.status_code, response.text, batch_id + suffix)
