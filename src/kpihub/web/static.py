"""The dashboard's static files (CSS, JS, the vendored Chart.js), shipped in the package.

Only files present in ``static/`` when the app starts are served: the list is made
once, so no request path ever reaches the file system.
"""

from __future__ import annotations

import functools
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

STATIC_DIR = Path(__file__).with_name("static")
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


@functools.cache
def _files() -> dict[str, Path]:
    return {
        p.relative_to(STATIC_DIR).as_posix(): p
        for p in STATIC_DIR.rglob("*")
        if p.is_file() and p.suffix in _TYPES
    }


async def static_file(request: Request) -> Response:
    path = _files().get(request.path_params["path"])
    if path is None:
        return PlainTextResponse("Not found", 404)
    return FileResponse(
        path,
        media_type=_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
