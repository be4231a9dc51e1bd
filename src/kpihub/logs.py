"""Logging: every record, kpihub's and the libraries' (uvicorn, asyncpg...), in one format.

kpihub's modules log with the standard library (``logging.getLogger("kpihub...")``);
structlog renders each record as one JSON object per line (or an aligned console
line), with the request's id and the record's ``extra`` fields merged in.

The access log, one line per request, is the exception: it goes through a structlog
logger of its own (``access_logger()``) with the same processors straight to the same
stream, because a stdlib record costs about twice as much, on every request.

``configure_logging`` is called once at the edge: by ``kpihub serve`` and by the ASGI
factory each uvicorn worker process runs. Importing kpihub configures nothing, so an app
built in a test logs wherever the test's logging goes.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor

from kpihub.settings import Settings

HANDLER_NAME = "kpihub"
_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,  # uvicorn's level below debug
}
_encoder = msgspec.json.Encoder(enc_hook=str)
_access: Any = None  # set by configure_logging; None: no access lines


def _dumps(value: Any, **_: Any) -> str:
    # structlog passes json.dumps keywords (default=...); enc_hook covers the same need.
    return _encoder.encode(value).decode()


def _drop_color_message(_: Any, __: str, event_dict: EventDict) -> EventDict:
    # uvicorn passes a coloured copy of its message as an extra field.
    event_dict.pop("color_message", None)
    return event_dict


def unconfigure_logging(handler: logging.Handler) -> None:
    """Undo ``configure_logging`` (for tests): its handler goes, access lines stop."""
    global _access
    logging.getLogger().removeHandler(handler)
    _access = None
    structlog.reset_defaults()


def access_logger() -> Any:
    """The access-log logger ``configure_logging`` made, or None before it ran."""
    return _access


def log_level(name: str) -> int:
    """The logging level named by ``KPIHUB_LOG_LEVEL`` (unknown names: info)."""
    return _LEVELS.get(name.strip().lower(), logging.INFO)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as ``settings.log_format`` says.

    Replaces the handler an earlier call installed (calling it again is harmless) and
    takes uvicorn's loggers over, so its lines come out in the same format. Returns the
    handler, so a caller may remove it again.
    """
    stream = stream or sys.stderr
    level = log_level(settings.log_level)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,  # the request id, bound per request
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    rendering: list[Processor]
    if settings.log_format == "json":
        rendering = [
            structlog.processors.format_exc_info,  # a traceback as one "exception" string
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
    else:
        rendering = [structlog.dev.ConsoleRenderer(colors=stream.isatty())]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *shared,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _drop_color_message,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        # uvicorn's own dictConfig (when it was run directly) gives these handlers of
        # their own; through the root they get ours.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # kpihub.access replaces uvicorn's access lines, which know no tenant or client.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))

    global _access
    _access = structlog.wrap_logger(
        structlog.WriteLogger(stream),
        processors=[*shared, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(level),
    ).bind(logger="kpihub.access")
    # Code logging through structlog.get_logger() ends up in the stdlib handler.
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return handler
