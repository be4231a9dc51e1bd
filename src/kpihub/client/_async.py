"""The asyncio client: :class:`KpiClient`'s twin, sharing all its logic."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Unpack

import httpx

from kpihub.client._core import Flow, connection_error
from kpihub.client._errors import KpiError
from kpihub.client._models import Ack, Batch
from kpihub.client._options import ClientOptions, CoreClient, make_core
from kpihub.client._transport import AsyncLoopbackTransport


class AsyncKpiClient(CoreClient):
    """``async with AsyncKpiClient(url, client_id, secret) as kpi: await kpi.send(...)``."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._core = make_core(base_url, client_id, client_secret, **options)
        if transport is None:
            transport = AsyncLoopbackTransport(httpx.AsyncHTTPTransport())
        self._http = httpx.AsyncClient(transport=transport)
        self._sleep = sleep

    async def token(self) -> str:
        return str(await self._retried(self._core.token_flow))

    async def send(
        self, *, type: str, version: str, context: str, data: Iterable[Mapping[str, Any]]
    ) -> Ack:
        batches = self._core.batches(type=type, version=version, context=context, data=data)
        return await self.send_batches(batches)

    async def send_batches(self, batches: Iterable[Batch]) -> Ack:
        acks: list[Ack] = []
        try:
            for batch in batches:
                acks.append(await self.send_batch(batch))
        except KpiError as exc:
            exc.acknowledged = Ack.combine(acks)
            raise
        return Ack.combine(acks)

    async def send_batch(self, batch: Batch) -> Ack:
        ack: Ack = await self._retried(lambda: self._core.attempt(batch))
        return ack

    async def _retried(self, flow: Callable[[], Flow]) -> Any:
        try:
            async for attempt in self._core.retrying():
                with attempt:
                    return await self._drive(flow())
        except httpx.TransportError as exc:
            raise connection_error(exc, self._core.base_url) from exc
        raise AssertionError("unreachable")

    async def _drive(self, flow: Flow) -> Any:
        try:
            op = next(flow)
            while True:
                if isinstance(op, httpx.Request):
                    op = flow.send(await self._http.send(op))
                else:
                    await self._sleep(op)
                    op = flow.send(None)
        except StopIteration as done:
            return done.value
        finally:
            flow.close()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncKpiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
