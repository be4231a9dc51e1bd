"""Splitting data into request bodies by element count and by bytes.

The input is a stream of :class:`Row` — one element with its owner (user and/or
location) — so the article's JSON body, NDJSON and CSV all batch the same way.
Consecutive rows of the same group share one ``data`` entry. Bodies are built
from pieces of compact JSON, so their exact size is known while they grow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kpihub.client._models import Batch

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_ELEMENTS", "Row", "make_batches", "rows_of"]

DEFAULT_MAX_ELEMENTS: Final = 10_000
"""Elements per request: the server's default limit."""
DEFAULT_MAX_BYTES: Final = 8 * 1024 * 1024
"""Bytes per request (before gzip): below the server's default 10 MB."""


@dataclass(frozen=True, slots=True)
class Row:
    """One element, its owner ids, and where it came from in the input."""

    element: Mapping[str, Any]
    user_id: object = None
    location_id: object = None
    origin: str = ""
    group: object = None  # rows of one group may share an entry; None: group by owner


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _entry_prefix(owner: dict[str, object]) -> bytes:
    return _dumps(owner)[:-1] + (b',"elements":[' if owner else b'"elements":[')


def rows_of(data: Iterable[Mapping[str, Any]]) -> Iterator[Row]:
    """Rows of the article's ``data`` array: each entry's elements, in order."""
    for i, entry in enumerate(data):
        for j, element in enumerate(entry["elements"]):
            yield Row(
                element,
                entry.get("user_id"),
                entry.get("location_id"),
                f"data.{i}.elements.{j}",
                group=i,
            )


def make_batches(
    header: Mapping[str, object],
    rows: Iterable[Row],
    *,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[Batch]:
    """Bodies ``{**header, "data": [...]}`` of at most ``max_elements`` and ``max_bytes``.

    ``header`` holds ``type``, ``version`` and ``context``. A single element
    too large for ``max_bytes`` on its own is a ``ValueError``.
    """
    if max_elements < 1 or max_bytes < 1:
        raise ValueError("max_elements and max_bytes must be at least 1")
    head = _dumps(dict(header))[:-1] + (b',"data":[' if header else b'"data":[')
    tail = b"]}"
    entries: list[tuple[bytes, list[bytes], list[str]]] = []
    size = len(head) + len(tail)
    count = 0
    group: object = object()

    def flush() -> Batch:
        body = (
            head + b",".join(prefix + b",".join(els) + b"]}" for prefix, els, _ in entries) + tail
        )
        return Batch(body, count, origins=tuple(tuple(o) for _, _, o in entries))

    for row in rows:
        element = _dumps(row.element)
        key = row.group if row.group is not None else (row.user_id, row.location_id)
        same = bool(entries) and key == group
        owner: dict[str, object] = {}
        if row.user_id is not None:
            owner["user_id"] = row.user_id
        if row.location_id is not None:
            owner["location_id"] = row.location_id
        prefix = b"" if same else _entry_prefix(owner)
        cost = len(element) + 1 if same else len(prefix) + len(element) + 2 + (1 if entries else 0)
        if entries and (count + 1 > max_elements or size + cost > max_bytes):
            yield flush()
            entries, size, count, same = [], len(head) + len(tail), 0, False
            prefix = _entry_prefix(owner)
            cost = len(prefix) + len(element) + 2
        if size + cost > max_bytes:
            raise ValueError(
                f"The element at {row.origin or 'the input'} alone makes a request of "
                f"{size + cost} bytes, over the limit of {max_bytes}."
            )
        if same:
            entries[-1][1].append(element)
            entries[-1][2].append(row.origin)
        else:
            entries.append((prefix, [element], [row.origin]))
        group = key
        size += cost
        count += 1
    if entries:
        yield flush()
