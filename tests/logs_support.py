"""Reading kpihub's JSON log lines back, in this process or from a server's log file."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kpihub.logs import configure_logging, unconfigure_logging
from kpihub.settings import Settings

_TAKEN_OVER = ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic")


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every JSON object line of ``text``; any other non-empty line fails the test.

    The test harness's own ``=== start N ===`` markers in a server log are skipped.
    """
    records = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("=== start"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"a log line is not JSON: {line!r}") from None
        assert isinstance(record, dict), line
        records.append(record)
    return records


def access_lines(records: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    """The access-log lines of the request ``request_id``."""
    return [
        r for r in records if r.get("logger") == "kpihub.access" and r["request_id"] == request_id
    ]


class CapturedLog:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return json_lines(self.text)


@contextmanager
def captured_json_log(settings: Settings) -> Iterator[CapturedLog]:
    """``configure_logging`` as ``kpihub serve`` calls it, into a buffer; undone afterwards."""
    root = logging.getLogger()
    saved_level = root.level
    saved = {
        name: (logging.getLogger(name).level, logging.getLogger(name).propagate)
        for name in _TAKEN_OVER
    }
    stream = io.StringIO()
    handler = configure_logging(settings, stream)
    try:
        yield CapturedLog(stream)
    finally:
        unconfigure_logging(handler)
        root.setLevel(saved_level)
        for name, (level, propagate) in saved.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).propagate = propagate
