"""Per-request cost of the request-id and access-log middleware, in this process.

    python -m bench.request_log [--requests 20000] [--rounds 7]

Calls a trivial ASGI app (it answers 200 with two bytes) directly and through
``RequestLogMiddleware``, with logging configured as ``kpihub serve`` configures it but
writing to /dev/null, for ``--rounds`` rounds of ``--requests`` requests; the best
round of each counts (the least disturbed by other work on the machine). Once at
``KPIHUB_LOG_LEVEL=warning`` (request id and context only) and once at ``info`` (plus
one JSON access line). Targets: < 5 us without the line, < 25 us with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kpihub.http.request_log import RequestLogMiddleware
from kpihub.logs import configure_logging, unconfigure_logging
from kpihub.settings import Settings

TARGETS_US = {"warning": 5.0, "info": 25.0}
HEADERS = [
    (b"host", b"acme.localhost"),
    (b"authorization", b"Bearer " + b"x" * 600),
    (b"content-type", b"application/json"),
    (b"content-length", b"1000"),
    (b"user-agent", b"kpihub-sdk/0.1"),
]


async def trivial(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def discard(message: Message) -> None:
    pass


async def nothing() -> Message:
    return {"type": "http.request", "body": b""}


async def best_us(app: ASGIApp, requests: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(requests):
            scope = {
                "type": "http",
                "method": "POST",
                "path": "/api/external/v1/kpi",
                "headers": HEADERS,
                "client": ("127.0.0.1", 5555),
            }
            await app(scope, nothing, discard)
        best = min(best, (time.perf_counter() - started) / requests * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    failed = False
    with open(os.devnull, "w") as devnull:
        for level, target in TARGETS_US.items():
            handler = configure_logging(Settings(log_level=level), devnull)
            try:
                bare = asyncio.run(best_us(trivial, args.requests, args.rounds))
                wrapped = asyncio.run(
                    best_us(RequestLogMiddleware(trivial), args.requests, args.rounds)
                )
            finally:
                unconfigure_logging(handler)
            cost = wrapped - bare
            failed |= cost >= target
            print(
                f"KPIHUB_LOG_LEVEL={level:<8} middleware adds {cost:5.1f} us per request "
                f"(target < {target:g} us; ratio {cost / target:.2f})"
            )
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
