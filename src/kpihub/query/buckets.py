"""Calendar buckets in a time zone: where each hour, day, week or month starts.

Pure functions over epoch seconds and ``zoneinfo`` zones. A bucket is the set of
instants that share a local calendar unit:

* ``day``, ``week`` (starting Monday), ``month``: the same local date, ISO week, or
  month. A day in Europe/Copenhagen is 23 hours on the last Sunday of March and
  25 hours on the last Sunday of October.
* ``hour``: the same local hour *and* the same UTC offset. When clocks go back,
  the repeated hour is two buckets (02:00 CEST and 02:00 CET, one hour each); on
  Lord Howe Island, where DST moves clocks by 30 minutes, the hour that is cut by
  a change is a 30-minute (spring) or two buckets of 60 and 30 minutes (autumn).

Boundaries are found by local calendar arithmetic, then checked against the
zone's offsets: a boundary that falls in a skipped wall-clock time lands on the
instant the clocks jumped.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

Interval = Literal["hour", "day", "week", "month"]
INTERVALS: Final[tuple[Interval, ...]] = ("hour", "day", "week", "month")
MAX_BUCKETS: Final = 2500

# The longest a bucket of each interval can be: a cheap lower bound on the count of a
# range, so a range of millions of buckets is refused without walking it.
_LONGEST: Final[dict[str, int]] = {
    "hour": 3600,
    "day": 26 * 3600,
    "week": 7 * 86400 + 2 * 3600,
    "month": 31 * 86400 + 2 * 3600,
}


class TooManyBuckets(ValueError):
    """The range holds more buckets than allowed."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} buckets; the limit is {limit}")
        self.count = count
        self.limit = limit


def _local(epoch: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).astimezone(zone)


def _offset(epoch: int, zone: ZoneInfo) -> timedelta:
    offset = _local(epoch, zone).utcoffset()
    assert offset is not None
    return offset


def _epoch(wall: datetime, zone: ZoneInfo) -> int:
    """The instant a naive local wall time names (``fold=0``: the earlier reading;
    a skipped wall time is read with the offset before the gap, which lands at or
    after the jump)."""
    return int(wall.replace(tzinfo=zone, fold=0).timestamp())


def _truncate(wall: datetime, interval: str) -> datetime:
    """The wall-clock start of the calendar unit holding ``wall`` (naive)."""
    wall = wall.replace(tzinfo=None, fold=0, microsecond=0)
    if interval == "hour":
        return wall.replace(minute=0, second=0)
    day = wall.replace(hour=0, minute=0, second=0)
    if interval == "day":
        return day
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    raise ValueError(interval)


def _advance(wall: datetime, interval: str) -> datetime:
    """The wall-clock start of the next calendar unit after the one starting at ``wall``."""
    if interval == "hour":
        return wall + timedelta(hours=1)
    if interval == "day":
        return wall + timedelta(days=1)
    if interval == "week":
        return wall + timedelta(days=7)
    if interval == "month":
        year, month = (wall.year + 1, 1) if wall.month == 12 else (wall.year, wall.month + 1)
        return wall.replace(year=year, month=month)
    raise ValueError(interval)


def _offset_change(lo: int, hi: int, zone: ZoneInfo) -> int:
    """The first instant in ``(lo, hi]`` whose offset differs from ``lo``'s."""
    base = _offset(lo, zone)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(mid, zone) == base:
            lo = mid
        else:
            hi = mid
    return hi


def _hour_tick(epoch: int, offset: timedelta) -> int:
    """The instant the local hour holding ``epoch`` began, at UTC offset ``offset``."""
    return epoch - (epoch + int(offset.total_seconds())) % 3600


def bucket_start(epoch: int, interval: str, zone: ZoneInfo) -> int:
    """The start of the bucket holding ``epoch``."""
    if interval == "hour":
        # The local hour's tick at ``epoch``'s offset, or the offset change after it.
        offset = _offset(epoch, zone)
        tick = _hour_tick(epoch, offset)
        if _offset(tick, zone) == offset:
            return tick
        return _offset_change(tick, epoch, zone)
    wall = _local(epoch, zone)
    start = _epoch(_truncate(wall, interval), zone)
    if start > epoch:
        # The unit's wall start was skipped and read after the jump; or it is
        # ambiguous and only its second reading precedes ``epoch``.
        start = int(_truncate(wall, interval).replace(tzinfo=zone, fold=1).timestamp())
        if start > epoch:  # pragma: no cover - no real zone skips past a whole unit
            start = epoch
    return start


def _hour_end(start: int, offset: timedelta, zone: ZoneInfo) -> tuple[int, timedelta]:
    """The end of the hour bucket starting at ``start`` (UTC offset ``offset``): the next
    tick of the local hour at that offset, or the offset change before it; and the
    offset there."""
    tick = _hour_tick(start, offset) + 3600
    after = _offset(tick, zone)
    if after == offset:
        return tick, after
    # Several changes within one hour do not happen; one is found exactly.
    change = _offset_change(start, tick, zone)
    return change, _offset(change, zone)


def next_bucket(start: int, interval: str, zone: ZoneInfo) -> int:
    """The start of the bucket after the one starting at ``start``."""
    if interval == "hour":
        return _hour_end(start, _offset(start, zone), zone)[0]
    wall = _truncate(_local(start, zone), interval)
    nxt = _epoch(_advance(wall, interval), zone)
    while nxt <= start:  # an ambiguous wall start read before ``start``
        wall = _advance(wall, interval)
        nxt = _epoch(_advance(wall, interval), zone)
    return nxt


def boundaries(
    start: int, end: int, interval: str, zone: ZoneInfo, *, limit: int = MAX_BUCKETS
) -> list[int]:
    """Bucket boundaries covering ``[start, end)``, snapped out to whole buckets.

    ``b[0] <= start`` and ``b[-1] >= end``; bucket ``i`` is ``[b[i], b[i+1])``. An empty
    range (``start == end``) still yields the one bucket holding ``start``.
    ``TooManyBuckets`` when more than ``limit`` buckets would be needed.
    """
    if end < start:
        raise ValueError("end before start")
    estimate = (end - start) // _LONGEST[interval]
    if estimate > limit + 1:
        raise TooManyBuckets(estimate, limit)
    out = [bucket_start(start, interval, zone)]
    following = _following(out[0], interval, zone)
    while out[-1] < end or len(out) == 1:
        if len(out) > limit:
            raise TooManyBuckets(len(out), limit)
        out.append(next(following))
    return out


def _following(start: int, interval: str, zone: ZoneInfo) -> Iterator[int]:
    """The starts of the buckets after the one starting at ``start``, in order.

    What chaining ``next_bucket`` gives, with a fraction of its conversions (a long
    series has thousands of buckets, each found on every request): hours step by the
    clock, carrying the UTC offset from one to the next; days, weeks and months step
    their wall-clock start and convert it once. Where that shortcut does not apply (a
    unit whose wall start was skipped or repeated) ``next_bucket`` decides.
    """
    if interval == "hour":
        offset = _offset(start, zone)
        while True:
            start, offset = _hour_end(start, offset, zone)
            yield start
    wall = _truncate(_local(start, zone), interval)
    while True:
        wall = _advance(wall, interval)
        nxt = _epoch(wall, zone)
        if nxt <= start:
            nxt = next_bucket(start, interval, zone)
            wall = _truncate(_local(nxt, zone), interval)
        yield nxt
        start = nxt
