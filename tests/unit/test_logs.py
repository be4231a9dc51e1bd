"""Log rendering (JSON and console) and which request ids are taken from the caller."""

from __future__ import annotations

import json
import logging

import pytest
from structlog.contextvars import bound_contextvars

from kpihub.http.request_log import MAX_REQUEST_ID, accepted_request_id, new_request_id
from kpihub.logs import access_logger, log_level
from kpihub.settings import Settings
from tests.logs_support import captured_json_log


def test_a_stdlib_record_becomes_one_json_object_with_context_and_extras() -> None:
    with captured_json_log(Settings()) as log:
        with bound_contextvars(request_id="req-1"):
            logging.getLogger("kpihub.test").warning(
                "stored %d of %s", 3, "batch", extra={"tenant": "acme", "elements": 3}
            )
        logging.getLogger("kpihub.test").info("outside a request")
    first, second = log.records()
    assert first["event"] == "stored 3 of batch"
    assert first["level"] == "warning"
    assert first["logger"] == "kpihub.test"
    assert first["request_id"] == "req-1"
    assert first["tenant"] == "acme"
    assert first["elements"] == 3
    assert first["timestamp"].endswith("Z")
    assert "request_id" not in second  # the binding ended with the request


def test_an_exception_is_one_string_field() -> None:
    with captured_json_log(Settings()) as log:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("kpihub.test").exception("failed")
    (record,) = log.records()
    assert record["level"] == "error"
    assert record["exception"].startswith("Traceback")
    assert "ValueError: boom" in record["exception"]
    assert len(log.text.splitlines()) == 1  # the traceback does not break the line


def test_uvicorns_lines_come_out_the_same_and_its_access_lines_not_at_all() -> None:
    with captured_json_log(Settings()) as log:
        logging.getLogger("uvicorn.error").info(
            "Started server process [%d]", 42, extra={"color_message": "\x1b[36m%d\x1b[0m"}
        )
        logging.getLogger("uvicorn.access").info("127.0.0.1 - GET / 200")
    (record,) = log.records()
    assert record["event"] == "Started server process [42]"
    assert record["logger"] == "uvicorn.error"
    assert "color_message" not in record


def test_the_level_setting_filters() -> None:
    with captured_json_log(Settings(log_level="warning")) as log:
        access_logger().info("request", status=200)
        logging.getLogger("kpihub").info("dropped")
        logging.getLogger("kpihub").warning("kept")
    assert [r["event"] for r in log.records()] == ["kept"]


def test_access_lines_share_the_format_and_the_request_context() -> None:
    assert access_logger() is None  # nothing is logged before configure_logging
    with captured_json_log(Settings()) as log, bound_contextvars(request_id="req-2"):
        access_logger().info("request", status=204, tenant="acme")
    (record,) = log.records()
    assert record["logger"] == "kpihub.access"
    assert record["event"] == "request"
    assert record["level"] == "info"
    assert record["request_id"] == "req-2"
    assert record["status"] == 204
    assert record["timestamp"].endswith("Z")
    assert access_logger() is None


def test_console_format_is_for_people() -> None:
    with captured_json_log(Settings(log_format="console")) as log:
        logging.getLogger("kpihub.test").warning("hello %s", "world", extra={"tenant": "acme"})
    (line,) = log.text.splitlines()
    assert "hello world" in line
    assert "tenant=acme" in line
    assert "warning" in line
    with pytest.raises(ValueError):
        json.loads(line)


def test_unknown_level_names_mean_info() -> None:
    assert log_level("WARNING") == logging.WARNING
    assert log_level("trace") == 5
    assert log_level("verbose") == logging.INFO


@pytest.mark.parametrize(
    "sent",
    [
        b"0f8fad5b-d9cb-469f-a165-70867728950e",
        b"vendor-7f3a:retry=2",
        b"Root=1-5759e988-bd862e3fe1be46a994272793",
        b"a" * MAX_REQUEST_ID,
        b"x",
        b"batch/2026.10.01@pos+1_2",
    ],
)
def test_sane_request_ids_are_kept(sent: bytes) -> None:
    assert accepted_request_id(sent) == sent.decode()


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"a" * (MAX_REQUEST_ID + 1),
        b"two words",
        b'say "hi"',
        b"line\nbreak",
        b"semi;colon",
        b"caf\xc3\xa9",
        b"<script>",
        b"tab\there",
    ],
)
def test_other_request_ids_are_replaced(sent: bytes) -> None:
    assert accepted_request_id(sent) is None


def test_new_request_ids_are_random_hex() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
