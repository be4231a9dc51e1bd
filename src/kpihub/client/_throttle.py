"""Client-side pacing that keeps a push under the server's published rate limit.

The server counts requests per client in fixed windows (180 per 60 s by default)
and says where the client stands on every answer: ``X-RateLimit-Limit``,
``X-RateLimit-Remaining``, ``RateLimit: "api";r=R;t=T`` (T seconds until the
window resets, rounded up) and ``RateLimit-Policy: "api";q=Q;w=W``.

The throttle spreads what is left of the budget evenly over what is left of the
window: after an answer with R requests remaining and T seconds to go, the next
request leaves T/R seconds after the previous one. With R = 0 it waits until the
window has ended. Because T is rounded up and measured when the answer arrived,
the client's idea of the window ends no earlier than the server's, so sequential
requests never meet a 429. Before the first answer it assumes ``limit`` per
``window`` (the server's default 180 per 60 s).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

__all__ = ["Throttle"]

_PARAM = re.compile(r";\s*([a-z]+)\s*=\s*([0-9.]+)")


def _params(value: str | None) -> dict[str, float]:
    if not value:
        return {}
    return {name: float(number) for name, number in _PARAM.findall(value)}


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class Throttle:
    """Paces requests; ``reserve()`` says how long to wait, ``update()`` reads an answer."""

    def __init__(
        self,
        limit: int = 180,
        window: float = 60.0,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        margin: float = 0.05,
    ) -> None:
        self.limit = limit
        self.window = window
        self.enabled = enabled
        self._clock = clock
        self._margin = margin
        self._remaining: float | None = None
        self._reset_at: float | None = None
        self._next_at = 0.0

    def reserve(self) -> float:
        """Seconds to wait before sending the next request (0 = now); takes its slot."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        if self._reset_at is not None and now >= self._reset_at:
            self._remaining = self._reset_at = None  # that window is over
        at = max(now, self._next_at)
        if self._remaining is None or self._reset_at is None:
            gap = self.window / self.limit
        elif self._remaining <= 0:
            at = max(at, self._reset_at + self._margin)
            gap = self.window / self.limit
            self._remaining = self._reset_at = None
        else:
            gap = max(0.0, self._reset_at - at) / self._remaining
            self._remaining -= 1
        self._next_at = at + gap
        return at - now

    def update(self, headers: Mapping[str, str]) -> None:
        """Learn the limit and where the client stands from an answer's headers."""
        now = self._clock()
        headers = {k.lower(): v for k, v in headers.items()}
        policy = _params(headers.get("ratelimit-policy"))
        state = _params(headers.get("ratelimit"))
        limit = _number(headers.get("x-ratelimit-limit")) or policy.get("q")
        if limit is not None and limit >= 1:
            self.limit = int(limit)
        if policy.get("w"):
            self.window = policy["w"]
        remaining = _number(headers.get("x-ratelimit-remaining"))
        if remaining is None:
            remaining = state.get("r")
        reset_in = state.get("t")
        wait = _number(headers.get("retry-after"))
        if wait is not None:
            remaining, reset_in = 0.0, max(wait, reset_in or 0.0)
        if remaining is None:
            return
        self._remaining = remaining
        self._reset_at = now + (reset_in if reset_in is not None else self.window)
