"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Unpack

import httpx

from kpihub.client._closing import Closing
from kpihub.client._core import Flow, connection_error
from kpihub.client._errors import KpiError
from kpihub.client._models import Ack, Batch
from kpihub.client._options import ClientOptions, CoreClient, make_core
from kpihub.client._transport import LoopbackTransport


class KpiClient(CoreClient, Closing):
    """Sends KPI data to one tenant with one client's credentials.

    ::

        with KpiClient("https://acme.example.com", client_id, secret) as kpi:
            ack = kpi.send(type="acme-pos", version="1.0.0", context="sales", data=[...])

    ``transport`` replaces the network (e.g. ``httpx.MockTransport``); ``sleep``
    replaces ``time.sleep`` for the throttle's waits. See :class:`ClientOptions`.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._core = make_core(base_url, client_id, client_secret, **options)
        if transport is None:
            transport = LoopbackTransport(httpx.HTTPTransport())
        self._http = httpx.Client(transport=transport)
        self._sleep = sleep

    def token(self) -> str:
        """The access token (cached; fetched when missing or about to expire)."""
        return str(self._retried(self._core.token_flow))

    def send(
        self, *, type: str, version: str, context: str, data: Iterable[Mapping[str, Any]]
    ) -> Ack:
        """Send the article's body in as many requests as the limits require."""
        batches = self._core.batches(type=type, version=version, context=context, data=data)
        return self.send_batches(batches)

    def send_batches(self, batches: Iterable[Batch]) -> Ack:
        acks: list[Ack] = []
        try:
            for batch in batches:
                acks.append(self.send_batch(batch))
        except KpiError as exc:
            exc.acknowledged = Ack.combine(acks)
            raise
        return Ack.combine(acks)

    def send_batch(self, batch: Batch) -> Ack:
        """One request, retried with the same ``Idempotency-Key`` until acknowledged."""
        ack: Ack = self._retried(lambda: self._core.attempt(batch))
        return ack

    def _retried(self, flow: Callable[[], Flow]) -> Any:
        try:
            for attempt in self._core.retrying():
                with attempt:
                    return self._drive(flow())
        except httpx.TransportError as exc:
            raise connection_error(exc, self._core.base_url) from exc
        raise AssertionError("unreachable")

    def _drive(self, flow: Flow) -> Any:
        try:
            op = next(flow)
            while True:
                if isinstance(op, httpx.Request):
                    op = flow.send(self._http.send(op))
                else:
                    self._sleep(op)
                    op = flow.send(None)
        except StopIteration as done:
            return done.value
        finally:
            flow.close()

    def close(self) -> None:
        self._http.close()
