"""Test oracles for calendar arithmetic, computed directly from the wall clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo


def calendar_unit(epoch: int, interval: str, zone: ZoneInfo) -> tuple[Any, ...]:
    """The local calendar unit (``interval``) an instant belongs to: what a bucket stands
    for."""
    wall = datetime.fromtimestamp(epoch, zone)
    if interval == "hour":
        return (wall.date(), wall.hour, wall.utcoffset())
    if interval == "day":
        return (wall.date(),)
    if interval == "week":
        return tuple(wall.isocalendar()[:2])
    return (wall.year, wall.month)
