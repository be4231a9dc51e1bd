"""The HTTP/1.1 protocol ``kpihub serve`` runs: uvicorn's httptools one, with a bound
on the request head.

httptools (llhttp) keeps a request line and headers of any size in memory while
they arrive; uvicorn bounds them only with its h11 protocol
(``h11_max_incomplete_event_size``). This protocol honours the same setting, so one
number bounds the head whichever parser runs: a request whose line and headers
exceed it is answered 431 and its connection closed, before the app sees it.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_LIMIT = 32 * 1024


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_limit: int = self.config.h11_max_incomplete_event_size or DEFAULT_LIMIT
        # Bytes received since the current request began, while its head is incomplete;
        # None between requests and once the head is complete.
        self._head_bytes: int | None = None

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
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        super().on_headers_complete()

    def _refuse_head(self) -> None:
        self.logger.warning("Request line and headers over %d bytes refused.", self._head_limit)
        body = json.dumps(
            {
                "message": f"The request line and headers are larger than the limit of "
                f"{self._head_limit} bytes. Send fewer or shorter headers.",
                "limit": self._head_limit,
            }
        ).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()
