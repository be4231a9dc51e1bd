"""``*.localhost`` tenants on machines that do not resolve them.

RFC 6761 reserves ``localhost`` and its subdomains for the loopback interface;
browsers and curl resolve ``acme.localhost`` to 127.0.0.1, but Python's resolver
often does not. For such hosts the default transport connects to 127.0.0.1 and
keeps the tenant's name in the ``Host`` header, which is what the server reads.
"""

from __future__ import annotations

import httpx


def _loopback(request: httpx.Request) -> None:
    host = request.url.host
    if host.endswith(".localhost"):
        request.url = request.url.copy_with(host="127.0.0.1")


class LoopbackTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _loopback(request)
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class AsyncLoopbackTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _loopback(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
