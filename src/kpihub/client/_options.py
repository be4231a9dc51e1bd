"""Construction options shared by :class:`KpiClient` and :class:`AsyncKpiClient`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypedDict, Unpack

from kpihub.client._batching import DEFAULT_MAX_BYTES, DEFAULT_MAX_ELEMENTS
from kpihub.client._core import Core
from kpihub.client._models import Stats
from kpihub.client._throttle import Throttle


class ClientOptions(TypedDict, total=False):
    """Keyword options of both clients (every one has a sensible default).

    - ``scope``: e.g. ``"kpi:write"``; default: every scope the client is allowed.
    - ``api_version``: ``"v1"``.
    - ``gzip``: compress request bodies (default True).
    - ``max_elements`` / ``max_bytes``: split requests above these (10,000 / 8 MiB).
    - ``timeout``: seconds per HTTP request (30).
    - ``throttle``: a :class:`Throttle` (default: 180 per 60 s until the server says
      otherwise); ``Throttle(enabled=False)`` turns pacing off.
    - ``retry_attempts`` / ``retry_timeout`` / ``retry_wait_max``: the retry policy
      (10 attempts, 120 s in all, at most 10 s between two attempts).
    - ``clock``: a monotonic clock (tests).
    """

    scope: str | None
    api_version: str
    gzip: bool
    max_elements: int
    max_bytes: int
    timeout: float
    throttle: Throttle | None
    retry_attempts: int
    retry_timeout: float
    retry_wait_max: float
    clock: Callable[[], float]


def make_core(
    base_url: str, client_id: str, client_secret: str, **options: Unpack[ClientOptions]
) -> Core:
    return Core(
        base_url,
        client_id,
        client_secret,
        scope=options.get("scope"),
        api_version=options.get("api_version", "v1"),
        gzip=options.get("gzip", True),
        max_elements=options.get("max_elements", DEFAULT_MAX_ELEMENTS),
        max_bytes=options.get("max_bytes", DEFAULT_MAX_BYTES),
        timeout=options.get("timeout", 30.0),
        throttle=options.get("throttle"),
        retry_attempts=options.get("retry_attempts", 10),
        retry_timeout=options.get("retry_timeout", 120.0),
        retry_wait_max=options.get("retry_wait_max", 10.0),
        clock=options.get("clock", time.monotonic),
    )


class CoreClient:
    """What both clients read straight from their :class:`Core`."""

    _core: Core

    @property
    def stats(self) -> Stats:
        return self._core.stats

    @property
    def base_url(self) -> str:
        return self._core.base_url
