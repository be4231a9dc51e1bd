"""Query strings of the read API, parsed and validated into frozen dataclasses.

Pure: the input is a mapping of parameter name to every value given (a multi-dict);
nothing here knows HTTP. Every problem is collected and raised at once as
``ValidationFailed`` (422), keyed by parameter name, each message naming the
parameter, the value, and what is allowed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kpihub.domain import AGGREGATES, GROUP_BY, RANK_BY, Environment, PointFilter, PointKey
from kpihub.errors import ValidationFailed
from kpihub.ingest import InvalidValue, show
from kpihub.ingest.times import parse_time
from kpihub.query.buckets import INTERVALS, MAX_BUCKETS, TooManyBuckets, boundaries

Params = Mapping[str, Sequence[str]]

POINTS_LIMIT: Final = 100
POINTS_MAX_LIMIT: Final = 10_000
LEADERBOARD_LIMIT: Final = 10
LEADERBOARD_MAX_LIMIT: Final = 1000
PERIODS: Final = ("timestamp", "overlap")
ORDERS: Final = ("desc", "asc")
FILLS: Final = ("null", "none")
_CURSOR_VERSION: Final = 1
_MAX_TEXT: Final = 255
_ZONE_NAME: Final = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")
_TIMES: Final = (
    "epoch seconds (e.g. 1727740800) or RFC 3339 with an offset (e.g. 2024-10-01T00:00:00Z)"
)


@dataclass(frozen=True, slots=True)
class PointsQuery:
    filter: PointFilter
    limit: int
    descending: bool
    after: PointKey | None
    fingerprint: str  # binds a cursor to the filters and order that produced it


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    filter: PointFilter  # start/end snapped out to whole buckets
    agg: str
    interval: str
    tz: str
    boundaries: tuple[int, ...]
    group_by: str | None
    fill: bool


@dataclass(frozen=True, slots=True)
class LeaderboardQuery:
    filter: PointFilter
    kpi: str
    by: str
    agg: str
    limit: int


def _listing(values: Sequence[str]) -> str:
    return ", ".join(values)


class _Reader:
    """Reads parameters one by one, collecting every problem."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.errors: dict[str, list[str]] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def check(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)

    def one(self, name: str, *, required: bool = False, allowed: str = "") -> str | None:
        values = [v for v in self.params.get(name, ()) if v != ""]
        if len(values) > 1:
            self.fail(name, f"The {name} parameter must be given once; got {len(values)} values.")
            return None
        if not values:
            if required:
                self.fail(name, f"The {name} parameter is required. Allowed: {allowed}.")
            return None
        value = values[0]
        return value if self._text(name, value) else None

    def many(self, name: str, *, required: bool = False) -> tuple[str, ...]:
        values = tuple(dict.fromkeys(v for v in self.params.get(name, ()) if v != ""))
        if required and not values:
            self.fail(
                name,
                f"The {name} parameter is required. Allowed: one or more KPI names "
                f"(repeat the parameter: {name}=sales&{name}=points); see /kpi/catalog.",
            )
        for value in values:
            self._text(name, value)
        return values

    def _text(self, name: str, value: str) -> bool:
        """Whether ``value`` is a storable text; records the problem when it is not."""
        if len(value) > _MAX_TEXT or "\x00" in value:
            self.fail(
                name,
                f"The {name} parameter must be at most {_MAX_TEXT} characters without NUL; "
                f"got {show(value)}.",
            )
            return False
        return True

    def choice(
        self, name: str, allowed: Sequence[str], default: str | None, *, required: bool = False
    ) -> str | None:
        value = self.one(name, required=required, allowed=_listing(allowed))
        if value is None:
            return default
        if value not in allowed:
            self.fail(
                name,
                f"The {name} parameter must be one of {_listing(allowed)}; got {show(value)}. "
                f"Allowed: {_listing(allowed)}.",
            )
            return default
        return value

    def integer(self, name: str, default: int, high: int) -> int:
        value = self.one(name)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= high:
            self.fail(
                name,
                f"The {name} parameter must be a whole number from 1 to {high}; got "
                f"{show(value)}. Allowed: 1..{high} (default {default}).",
            )
            return default
        return int(value)

    def time(self, name: str, zone: ZoneInfo, *, required: bool = False) -> int | None:
        value = self.one(name, required=required, allowed=_TIMES)
        if value is None:
            return None
        try:
            return parse_time(value, zone)
        except InvalidValue as exc:
            self.fail(name, f"The {name} parameter {exc} Allowed: {_TIMES}.")
            return None

    def zone(self, name: str, default: str) -> tuple[str, ZoneInfo | None]:
        value = self.one(name) or default
        try:
            if not _ZONE_NAME.fullmatch(value):
                raise ValueError(value)
            return value, ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.fail(
                name,
                f"The {name} parameter must be an IANA time zone name; got {show(value)}. "
                "Allowed: names of the tz database such as UTC, Europe/Copenhagen, "
                "America/New_York.",
            )
            return value, None

    def range(self, zone: ZoneInfo, *, required: bool = False) -> tuple[int | None, int | None]:
        start = self.time("from", zone, required=required)
        end = self.time("to", zone, required=required)
        if start is not None and end is not None and end < start:
            self.fail(
                "from",
                f"The from parameter ({start}) must not be after to ({end}): the range is "
                "[from, to). Allowed: from <= to.",
            )
        return start, end


def _filter(
    r: _Reader,
    tenant_id: int,
    environment: Environment,
    kpis: tuple[str, ...],
    start: int | None,
    end: int | None,
    overlap: bool,
) -> PointFilter:
    return PointFilter(
        tenant_id=tenant_id,
        environment=environment,
        type=r.one("type"),
        context=r.one("context"),
        kpis=kpis,
        user_id=r.one("user_id"),
        location_id=r.one("location_id"),
        start=start,
        end=end,
        overlap=overlap,
    )


# -- points ----------------------------------------------------------------------------


def parse_points(
    params: Params, *, tenant_id: int, environment: Environment, zone: ZoneInfo
) -> PointsQuery:
    r = _Reader(params)
    kpis = r.many("kpi")
    start, end = r.range(zone)
    period = r.choice("period", PERIODS, "timestamp")
    flt = _filter(r, tenant_id, environment, kpis, start, end, period == "overlap")
    limit = r.integer("limit", POINTS_LIMIT, POINTS_MAX_LIMIT)
    order = r.choice("order", ORDERS, "desc")
    fingerprint = _fingerprint(flt, order or "desc")
    after = _cursor(r, fingerprint)
    r.check()
    return PointsQuery(
        filter=flt, limit=limit, descending=order == "desc", after=after, fingerprint=fingerprint
    )


def _fingerprint(flt: PointFilter, order: str) -> str:
    identity = [
        flt.tenant_id,
        flt.environment.value,
        flt.type,
        flt.context,
        sorted(flt.kpis),
        flt.user_id,
        flt.location_id,
        flt.start,
        flt.end,
        flt.overlap,
        order,
    ]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def encode_cursor(fingerprint: str, key: PointKey) -> str:
    """An opaque cursor: base64url of the last row's sort key and the query's fingerprint."""
    raw = json.dumps(
        [_CURSOR_VERSION, fingerprint, key.timestamp, key.type, key.context, key.element_id],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _cursor(r: _Reader, fingerprint: str) -> PointKey | None:
    text = r.one("cursor")
    if text is None:
        return None
    allowed = "Allowed: the next_cursor of the previous page, unchanged, with the same filters."
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        doc = json.loads(raw)
        version, owner, ts, type_, context, element_id = doc
        if version != _CURSOR_VERSION or not isinstance(owner, str):
            raise ValueError
        if type(ts) is not int or not all(isinstance(v, str) for v in (type_, context, element_id)):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        r.fail(
            "cursor",
            f"The cursor parameter is not a cursor this API issued; got {show(text)}. {allowed}",
        )
        return None
    if owner != fingerprint:
        r.fail(
            "cursor",
            "The cursor parameter belongs to a query with other filters or another order; "
            f"repeat that query's parameters or drop the cursor to start over. {allowed}",
        )
        return None
    return PointKey(ts, type_, context, element_id)


# -- series ----------------------------------------------------------------------------


def parse_series(
    params: Params,
    *,
    tenant_id: int,
    environment: Environment,
    tenant_zone: str,
    limit: int = MAX_BUCKETS,
) -> SeriesQuery:
    r = _Reader(params)
    kpis = r.many("kpi", required=True)
    agg = r.choice("agg", AGGREGATES, "sum")
    interval = r.choice("interval", INTERVALS, None, required=True)
    tz, zone = r.zone("tz", tenant_zone)
    group_by = r.choice("group_by", GROUP_BY, None)
    fill = r.choice("fill", FILLS, "null")
    r.choice("period", ("timestamp",), "timestamp")
    start, end = r.range(zone or ZoneInfo("UTC"), required=True)
    if start is not None and end is not None and start == end:
        r.fail(
            "to",
            "The to parameter must be after from: a series needs a non-empty "
            "range [from, to). Allowed: to > from.",
        )
    flt = _filter(r, tenant_id, environment, kpis, start, end, False)
    edges: list[int] = []
    if not r.errors and zone is not None and interval is not None:
        assert start is not None and end is not None
        try:
            edges = boundaries(start, end, interval, zone, limit=limit)
        except TooManyBuckets as exc:
            r.fail(
                "interval",
                f"The range from {start} to {end} holds more than {exc.limit} {interval} "
                f"buckets; the limit is {exc.limit} buckets per answer. Allowed: a shorter "
                "range or a longer interval (hour, day, week, month).",
            )
    r.check()
    assert interval is not None and agg is not None and edges
    return SeriesQuery(
        filter=PointFilter(
            tenant_id=flt.tenant_id,
            environment=flt.environment,
            type=flt.type,
            context=flt.context,
            kpis=flt.kpis,
            user_id=flt.user_id,
            location_id=flt.location_id,
            start=edges[0],
            end=edges[-1],
        ),
        agg=agg,
        interval=interval,
        tz=tz,
        boundaries=tuple(edges),
        group_by=group_by,
        fill=fill != "none",
    )


# -- leaderboard -----------------------------------------------------------------------


def parse_leaderboard(
    params: Params, *, tenant_id: int, environment: Environment, zone: ZoneInfo
) -> LeaderboardQuery:
    r = _Reader(params)
    kpi = r.one("kpi", required=True, allowed="one KPI name (see /kpi/catalog)")
    by = r.choice("by", RANK_BY, None, required=True)
    agg = r.choice("agg", AGGREGATES, "sum")
    limit = r.integer("limit", LEADERBOARD_LIMIT, LEADERBOARD_MAX_LIMIT)
    start, end = r.range(zone)
    period = r.choice("period", PERIODS, "timestamp")
    flt = _filter(r, tenant_id, environment, (kpi,) if kpi else (), start, end, period == "overlap")
    r.check()
    assert kpi is not None and by is not None and agg is not None
    return LeaderboardQuery(filter=flt, kpi=kpi, by=by, agg=agg, limit=limit)
