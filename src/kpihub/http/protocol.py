"""The HTTP/1.1 protocol ``kpihub serve`` runs: uvicorn's httptools one, with the request
head bounded in size and in time.

httptools (llhttp) keeps a request line and headers of any size in memory while they
arrive, and uvicorn waits for them forever: a connection that sends nothing, or a
header a byte a second (slowloris), holds a socket until the client gives up. Here:

- a head over ``head_limit`` bytes is answered 431 and the connection closed;
- a head not complete ``head_timeout`` seconds after the connection opened, or after
  the previous response on it, closes the connection (with a 408 when part of a
  request had arrived; an idle connection is just closed).

Both happen before the app sees the request. The request body has its own deadline,
enforced by the app (``kpihub.http.body``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _json_response(status: bytes, document: dict[str, object]) -> bytes:
    body = json.dumps(document).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """Give uvicorn a ``functools.partial`` binding ``head_limit`` (bytes) and
    ``head_timeout`` (seconds), from the settings (``kpihub serve`` does)."""

    def __init__(self, *args: Any, head_limit: int, head_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_limit = head_limit
        self._head_timeout = head_timeout
        # Bytes received since the current request began, while its head is incomplete;
        # None between requests and once the head is complete.
        self._head_bytes: int | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    # -- size ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # Counted before feeding: bytes of a new request arriving in this chunk are
        # counted from the next chunk on, so a head may use up to one chunk more.
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._head_bytes is not None
            and self._head_bytes > self._head_limit
            and not self.transport.is_closing()
        ):
            self.logger.warning("Request line and headers over %d bytes refused.", self._head_limit)
            self._refuse(
                b"431 Request Header Fields Too Large",
                {
                    "message": f"The request line and headers are larger than the limit of "
                    f"{self._head_limit} bytes. Send fewer or shorter headers.",
                    "limit": self._head_limit,
                },
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        self._disarm()
        super().on_headers_complete()

    # -- time ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Only while no request is in flight: a pipelined one may have started just now.
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes is None:  # idle: no request has begun
            self.transport.close()
            return
        self.logger.warning("Request head not received within %gs.", self._head_timeout)
        self._refuse(
            b"408 Request Timeout",
            {
                "message": f"The request line and headers did not arrive within "
                f"{self._head_timeout:g} seconds. Send the request head at once.",
                "timeout": self._head_timeout,
            },
        )

    def _refuse(self, status: bytes, document: dict[str, object]) -> None:
        self._disarm()
        self.transport.write(_json_response(status, document))
        self.transport.close()
