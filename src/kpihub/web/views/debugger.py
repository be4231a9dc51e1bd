"""The integration debugger: the latest requests to the ingestion endpoint, and each one
as it was received (body pretty-printed, a 422's errors next to their paths).

Credentials that a body carries by mistake are never shown (``kpihub.web.redact``).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from starlette.responses import Response

from kpihub.domain import Client, RequestDetail, RequestFilter
from kpihub.web.page import Ctx, page, render
from kpihub.web.redact import redact

PAGE_SIZE = 100
SHOWN_BODY_CHARS = 64 * 1024
STATUS_FILTERS: dict[str, str] = {
    "": "all",
    "accepted": "accepted (200)",
    "rejected": "rejected (not 200)",
    "400": "400 malformed",
    "401": "401 unauthenticated",
    "403": "403 missing scope",
    "413": "413 too large",
    "415": "415 wrong content type",
    "422": "422 invalid data",
    "503": "503 unavailable",
}


def _client_names(clients: list[Client]) -> dict[int, str]:
    return {c.id: f"{c.name} ({c.client_id})" for c in clients}


@page()
async def requests(ctx: Ctx) -> Response:
    query = ctx.request.query_params
    status_filter = query.get("status", "")
    if status_filter not in STATUS_FILTERS:
        status_filter = ""
    before: float | None = None
    try:
        before = float(query["before"]) if query.get("before") else None
    except ValueError:
        before = None
    rows = await ctx.svc.storage.list_requests(
        RequestFilter(
            ctx.tenant.id,
            ctx.environment,
            status=int(status_filter) if status_filter.isdigit() else None,
            rejected={"accepted": False, "rejected": True}.get(status_filter),
            before=before,
            limit=PAGE_SIZE,
        )
    )
    names = _client_names(await ctx.svc.storage.list_clients(ctx.tenant.id))
    older = rows[-1].received_at if len(rows) == PAGE_SIZE else None
    return render(
        ctx,
        "debugger.html",
        rows=rows,
        names=names,
        filters=STATUS_FILTERS,
        status_filter=status_filter,
        older=older,
    )


def body_text(detail: RequestDetail) -> str:
    """The stored body as text, credentials redacted."""
    if not detail.raw_body:
        return ""
    try:
        raw = zlib.decompress(detail.raw_body)
    except zlib.error:
        return "(the stored body cannot be decompressed)"
    return redact(raw.decode("utf-8", errors="replace"))


def pretty(text: str) -> tuple[str, Any]:
    """The body indented when it is JSON (and the parsed document), else as received."""
    try:
        doc = json.loads(text)
    except ValueError:
        return text, None
    return json.dumps(doc, indent=2, ensure_ascii=False), doc


def value_at(doc: Any, path: str) -> tuple[bool, Any]:
    """The value at a dotted error path (``data.0.elements.1.value``) of the body."""
    node = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


async def _detail(ctx: Ctx) -> RequestDetail | None:
    return await ctx.svc.storage.get_request(ctx.tenant.id, ctx.request.path_params["batch_id"])


@page()
async def request_detail(ctx: Ctx) -> Response:
    detail = await _detail(ctx)
    if detail is None:
        return render(
            ctx, "error.html", 404, title="Not found", message="No such request of this tenant."
        )
    text, doc = pretty(body_text(detail))
    shown, cut = text, False
    if len(text) > SHOWN_BODY_CHARS:
        shown, cut = text[:SHOWN_BODY_CHARS], True
    errors = []
    for path, messages in detail.errors.items():
        found, value = value_at(doc, path) if doc is not None else (False, None)
        sent = json.dumps(value, ensure_ascii=False) if found else None
        errors.append((path, [redact(m) for m in messages], sent))
    client = None
    if detail.summary.client_pk is not None:
        names = _client_names(await ctx.svc.storage.list_clients(ctx.tenant.id))
        client = names.get(detail.summary.client_pk)
    return render(
        ctx,
        "request.html",
        r=detail.summary,
        detail=detail,
        body=shown,
        cut=cut,
        size=len(text),
        errors=errors,
        client=client,
        message=redact(detail.message or ""),
    )


@page()
async def request_body(ctx: Ctx) -> Response:
    detail = await _detail(ctx)
    if detail is None:
        return Response("Not found", 404, media_type="text/plain")
    raw = zlib.decompress(detail.raw_body) if detail.raw_body else b""
    # surrogateescape: bytes that are not UTF-8 come back out exactly as they were sent.
    raw = redact(raw.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    name = f"request-{detail.summary.batch_id}.json"
    return Response(
        raw,
        200,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
        media_type="application/octet-stream",
    )
