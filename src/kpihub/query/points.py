"""The wire shape of one stored point: its field names, its JSON object and its CSV
rows, shared by the read API, the dashboard's CSV download and the OpenAPI schema."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from kpihub.domain import StoredPoint

POINT_FIELDS = (
    "id",
    "type",
    "context",
    "kpi",
    "object_type",
    "value",
    "units",
    "user_id",
    "location_id",
    "timestamp",
    "date_from",
    "date_to",
)


def point_values(p: StoredPoint) -> tuple[Any, ...]:
    """The point's values in :data:`POINT_FIELDS` order."""
    return (
        p.element_id,
        p.type,
        p.context,
        p.kpi,
        p.object_type,
        p.value,
        p.units,
        p.user_id,
        p.location_id,
        p.timestamp,
        p.date_from,
        p.date_to,
    )


def point_json(p: StoredPoint) -> dict[str, Any]:
    return dict(zip(POINT_FIELDS, point_values(p), strict=True))


def write_points_csv(writer: Any, points: Iterable[StoredPoint]) -> None:
    """The header and one row per point to a ``csv.writer``; values as ``repr``."""
    writer.writerow(POINT_FIELDS)
    for p in points:
        writer.writerow(
            repr(v) if name == "value" else v
            for name, v in zip(POINT_FIELDS, point_values(p), strict=True)
        )


def points_csv(points: Iterable[StoredPoint]) -> bytes:
    out = io.StringIO()
    write_points_csv(csv.writer(out, lineterminator="\r\n"), points)
    return out.getvalue().encode()
