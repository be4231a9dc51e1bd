"""Everything the sync and async clients share: all but the I/O.

A request is a small generator (:meth:`Core.attempt`) that yields what it needs
done — an ``httpx.Request`` to send or a number of seconds to sleep — and gets
the ``httpx.Response`` back. :class:`~kpihub.client.KpiClient` and
:class:`~kpihub.client.AsyncKpiClient` only drive it, with blocking or
``await``-ing I/O, inside the same ``stamina`` retry policy.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote_plus, urlsplit

import httpx
import stamina

from kpihub.client._batching import make_batches, rows_of
from kpihub.client._errors import (
    ApiError,
    AuthenticationError,
    KpiConnectionError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    api_error,
)
from kpihub.client._models import Ack, Batch, Stats
from kpihub.client._throttle import Throttle
from kpihub.client._tokens import TokenCache

# What an attempt asks its driver for: send this request, or sleep this long.
Op = httpx.Request | float
Flow = Generator[Op, httpx.Response | None, Any]

USER_AGENT: Final = "kpihub-client/0.1"
_NOT_RETRIED: Final = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def retry_hook(exc: Exception) -> bool | float:
    """stamina's ``on``: network errors, timeouts (ours and the server's 408), 429 and 5xx;
    a ``Retry-After`` wins."""
    if isinstance(exc, httpx.TransportError):
        return not isinstance(exc, _NOT_RETRIED)
    if isinstance(exc, RateLimitError | RequestTimeoutError | ServerError):
        return exc.retry_after if exc.retry_after is not None else True
    return False


def connection_error(exc: httpx.TransportError, url: str) -> KpiConnectionError:
    kind = type(exc).__name__
    return KpiConnectionError(f"Could not reach {url} ({kind}: {exc or 'no detail'}).")


class Core:
    """Configuration, token, throttle and counters of one client; builds and reads requests."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None,
        api_version: str,
        gzip: bool,
        max_elements: int,
        max_bytes: int,
        timeout: float,
        throttle: Throttle | None,
        retry_attempts: int,
        retry_timeout: float,
        retry_wait_max: float,
        clock: Callable[[], float],
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"base_url {base_url!r} must be the tenant's URL, e.g. https://acme.example.com"
            )
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.api_version = api_version
        self.gzip = gzip
        self.max_elements = max_elements
        self.max_bytes = max_bytes
        self.timeout = httpx.Timeout(timeout).as_dict()
        self.throttle = throttle if throttle is not None else Throttle(clock=clock)
        self.retry_attempts = retry_attempts
        self.retry_timeout = retry_timeout
        self.retry_wait_max = retry_wait_max
        self.tokens = TokenCache(clock)
        self.stats = Stats()

    # -- the parts a driver needs ----------------------------------------------

    def retrying(self) -> Any:
        """The retry policy: exponential backoff with jitter, ``Retry-After`` honoured."""
        return stamina.retry_context(
            on=self._count_retry,
            attempts=self.retry_attempts,
            timeout=self.retry_timeout,
            wait_initial=0.2,
            wait_max=self.retry_wait_max,
            wait_jitter=1.0,
        )

    def _count_retry(self, exc: Exception) -> bool | float:
        decision = retry_hook(exc)
        if decision is not False:
            self.stats.retries += 1
        return decision

    def batches(
        self, *, type: str, version: str, context: str, data: Iterable[Mapping[str, Any]]
    ) -> list[Batch]:
        header = {"type": type, "version": version, "context": context}
        return list(
            make_batches(
                header, rows_of(data), max_elements=self.max_elements, max_bytes=self.max_bytes
            )
        )

    # -- one attempt -------------------------------------------------------------

    def token_flow(self, force: bool = False) -> Flow:
        """The cached token, or a new one from ``/oauth/token``."""
        token = None if force else self.tokens.get()
        if token is not None:
            return token
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        request = httpx.Request(
            "POST",
            f"{self.base_url}/oauth/token",
            data=form,
            headers={
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
                "Authorization": basic_auth(self.client_id, self.client_secret),
            },
            extensions={"timeout": self.timeout},
        )
        response = yield request
        assert response is not None
        self.stats.tokens_fetched += 1
        if response.status_code != 200:
            raise api_error(response.status_code, response.content, response.headers)
        try:
            doc = response.json()
            token = str(doc["access_token"])
            expires_in = float(doc.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise ApiError(
                response.status_code, "The token endpoint did not answer with an access_token."
            ) from None
        self.tokens.store(token, expires_in)
        return token

    def attempt(self, batch: Batch) -> Flow:
        """Send ``batch`` once: pace, authenticate (again once on a 401), read the answer."""
        content = gzip.compress(batch.body, compresslevel=5, mtime=0) if self.gzip else batch.body
        for retry_401 in (False, True):
            token = yield from self.token_flow(force=retry_401)
            wait = self.throttle.reserve()
            if wait > 0:
                self.stats.throttled_seconds += wait
                yield wait
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "Idempotency-Key": batch.key,
                "User-Agent": USER_AGENT,
            }
            if self.gzip:
                headers["Content-Encoding"] = "gzip"
            response = yield httpx.Request(
                "POST",
                f"{self.base_url}/api/external/{self.api_version}/kpi",
                content=content,
                headers=headers,
                extensions={"timeout": self.timeout},
            )
            assert response is not None
            self.stats.requests += 1
            self.stats.bytes_sent += len(content)
            self.stats.statuses[response.status_code] += 1
            self.throttle.update(response.headers)
            if response.status_code == 401 and not retry_401:
                self.tokens.clear()  # expired or revoked early: one new token, one more try
                continue
            return self.read_ack(response)
        raise AssertionError("unreachable")

    @staticmethod
    def read_ack(response: httpx.Response) -> Ack:
        if not 200 <= response.status_code < 300:
            error = api_error(response.status_code, response.content, response.headers)
            if isinstance(error, AuthenticationError) and not error.message:
                error.message = "The access token was refused."
            raise error
        try:
            doc = response.json()
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}

        def count(name: str) -> int:
            value = doc.get(name)
            return value if isinstance(value, int) else 0

        return Ack(
            batch_ids=(str(doc.get("batch_id", "")),),
            received=count("received"),
            created=count("created"),
            updated=count("updated"),
            unchanged=count("unchanged"),
            replayed=response.headers.get("idempotent-replayed") == "true",
        )


def basic_auth(client_id: str, client_secret: str) -> str:
    """HTTP Basic as RFC 6749 §2.3.1 wants it: each part form-urlencoded first."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()
