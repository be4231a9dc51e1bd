"""KPI ingestion: turning a decoded request body into domain objects.

The parsers here are pure (no I/O). They share one error type,
:class:`InvalidValue`, whose message is a sentence fragment that completes
"The <dotted.path> field ..." — the parsers do not know where in the body a
value sits, :func:`kpihub.ingest.validate.validate_batch` does.
"""

from __future__ import annotations

__all__ = ["InvalidValue", "described", "show"]

_SHOW_LIMIT = 60
# int -> str refuses very long integers (sys.int_info.str_digits_check_threshold);
# anything with more bits than this is described by its size instead.
_SHOW_INT_BITS = 200


class InvalidValue(ValueError):
    """A value that cannot be accepted.

    ``str(exc)`` completes the sentence "The <field> field ...", e.g.
    "must be a number; got '1,5'. Use '.' as the decimal separator, e.g. '1.5'."
    """


def show(value: object, limit: int = _SHOW_LIMIT) -> str:
    """A short, JSON-flavoured rendering of a decoded JSON value for error messages.

    Strings keep Python's quoting (``'1,5'``) so that whitespace and control
    characters are visible; long values are cut to about ``limit`` characters.
    """
    text = _render(value, limit, 0)
    # A long string already says how long it was; keep that note.
    if len(text) > limit + 3 and not isinstance(value, str):
        text = text[:limit] + "..."
    return text


def described(value: object) -> str:
    """:func:`show`, with a word for containers: "an array ([1, 2])", "'1,5'", "null"."""
    if isinstance(value, list):
        return f"an array ({show(value)})"
    if isinstance(value, dict):
        return f"an object ({show(value)})"
    return show(value)


def _render(value: object, limit: int, depth: int) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        if len(value) > limit:
            return f"{value[:limit]!r}... ({len(value)} characters)"
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > _SHOW_INT_BITS:
            return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        if depth >= 2:
            return "[...]" if value else "[]"
        parts: list[str] = []
        size = 0
        for item in value:
            if size > limit:
                parts.append("...")
                break
            part = _render(item, limit, depth + 1)
            parts.append(part)
            size += len(part) + 2
        return "[" + ", ".join(parts) + "]"
    if isinstance(value, dict):
        if depth >= 2:
            return "{...}" if value else "{}"
        parts = []
        size = 0
        for key, item in value.items():
            if size > limit:
                parts.append("...")
                break
            part = f"{_render(key, limit, depth + 1)}: {_render(item, limit, depth + 1)}"
            parts.append(part)
            size += len(part) + 2
        return "{" + ", ".join(parts) + "}"
    return f"a {type(value).__name__}"
