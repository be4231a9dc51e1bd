"""Calendar bucket boundaries in a zone, across DST changes (pure)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpihub.query.buckets import (
    INTERVALS,
    TooManyBuckets,
    boundaries,
    bucket_start,
    next_bucket,
)
from tests.calendar import calendar_unit

CPH = ZoneInfo("Europe/Copenhagen")
NYC = ZoneInfo("America/New_York")
LHI = ZoneInfo("Australia/Lord_Howe")
KTM = ZoneInfo("Asia/Kathmandu")
ZONES = (CPH, NYC, LHI, KTM, ZoneInfo("UTC"), ZoneInfo("America/Santiago"))
# Zones whose changes test the walk's shortcuts: midnight skipped (Havana, Santiago),
# a whole day skipped (Apia, 2011-12-30), 30-minute changes (Lord Howe), a 2-hour
# change (Troll), quarter-hour offsets (Kathmandu, Chatham).
ODD_ZONES = (
    *ZONES,
    ZoneInfo("America/Havana"),
    ZoneInfo("Pacific/Apia"),
    ZoneInfo("Antarctica/Troll"),
    ZoneInfo("Pacific/Chatham"),
    ZoneInfo("America/Sao_Paulo"),
)
H = 3600


def at(zone: ZoneInfo, *wall: int) -> int:
    """Epoch of a local wall time (the first reading when ambiguous)."""
    return int(datetime(*wall, tzinfo=zone).timestamp())  # type: ignore[arg-type,misc]


def utc(*wall: int) -> int:
    return int(datetime(*wall, tzinfo=UTC).timestamp())  # type: ignore[arg-type,misc]


def lengths(start: int, end: int, interval: str, zone: ZoneInfo) -> list[int]:
    edges = boundaries(start, end, interval, zone)
    return [b - a for a, b in itertools.pairwise(edges)]


# -- days ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        (CPH, (2024, 3, 31), 23),  # last Sunday of March
        (CPH, (2024, 10, 27), 25),  # last Sunday of October
        (CPH, (2024, 6, 1), 24),
        (NYC, (2024, 3, 10), 23),
        (NYC, (2024, 11, 3), 25),
        (KTM, (2024, 3, 31), 24),
    ],
)
def test_a_day_has_the_hours_of_its_calendar_day(
    zone: ZoneInfo, day: tuple[int, int, int], hours: int
) -> None:
    start = at(zone, *day)
    midday = start + 12 * H
    assert bucket_start(midday, "day", zone) == start
    assert next_bucket(start, "day", zone) - start == hours * H


def test_lord_howe_days_are_23_and_a_half_and_24_and_a_half_hours() -> None:
    # DST ends 2024-04-07 02:00 (+11 -> +10:30), starts 2024-10-06 02:00 (+10:30 -> +11).
    assert lengths(at(LHI, 2024, 4, 7, 12), at(LHI, 2024, 4, 7, 13), "day", LHI) == [int(24.5 * H)]
    assert lengths(at(LHI, 2024, 10, 6, 12), at(LHI, 2024, 10, 6, 13), "day", LHI) == [
        int(23.5 * H)
    ]


def test_kathmandu_days_start_at_18_15_utc() -> None:
    start = bucket_start(utc(2024, 5, 1, 12), "day", KTM)
    assert start == utc(2024, 4, 30, 18, 15)


# -- hours -----------------------------------------------------------------------------


def test_copenhagen_spring_day_has_23_one_hour_buckets() -> None:
    day = at(CPH, 2024, 3, 31)
    assert lengths(day, day + 23 * H, "hour", CPH) == [H] * 23


def test_copenhagen_autumn_day_has_25_hour_buckets_and_02_00_twice() -> None:
    day = at(CPH, 2024, 10, 27)
    edges = boundaries(day, day + 25 * H, "hour", CPH)
    assert [b - a for a, b in itertools.pairwise(edges)] == [H] * 25
    walls = [datetime.fromtimestamp(b, CPH).strftime("%H%z") for b in edges[:-1]]
    assert walls[2:4] == ["02+0200", "02+0100"]


def test_new_york_hours_around_the_changes() -> None:
    spring = at(NYC, 2024, 3, 10)
    assert lengths(spring, spring + 23 * H, "hour", NYC) == [H] * 23
    autumn = at(NYC, 2024, 11, 3)
    assert lengths(autumn, autumn + 25 * H, "hour", NYC) == [H] * 25


def test_lord_howe_hours_cut_by_a_30_minute_change() -> None:
    # Autumn: 01:00 +11 to 02:00 +11 (= 01:30 +10:30), then 01:30 to 02:00 at +10:30.
    autumn = at(LHI, 2024, 4, 7, 1)
    assert lengths(autumn, autumn + 2 * H, "hour", LHI)[:3] == [H, H // 2, H]
    # Spring: 01:00 to 02:00 at +10:30, then 02:30 (+11) to 03:00.
    spring = at(LHI, 2024, 10, 6, 1)
    assert lengths(spring, spring + 2 * H, "hour", LHI)[:3] == [H, H // 2, H]
    assert datetime.fromtimestamp(spring + H, LHI).strftime("%H:%M") == "02:30"


def test_chatham_hours_after_its_change_end_at_the_next_local_hour() -> None:
    # 2024-04-07 03:45 +13:45 becomes 02:45 +12:45: 02:45-03:00 is a bucket of its own.
    chatham = ZoneInfo("Pacific/Chatham")
    start = at(chatham, 2024, 4, 7, 1)
    edges = boundaries(start, start + 4 * H, "hour", chatham)
    assert [(b - a) // 60 for a, b in itertools.pairwise(edges)] == [60, 60, 45, 15, 60]
    walls = [datetime.fromtimestamp(b, chatham).strftime("%H:%M%z") for b in edges[2:5]]
    assert walls == ["03:00+1345", "02:45+1245", "03:00+1245"]


def test_troll_two_hour_change_keeps_every_local_hour_apart() -> None:
    # 2024-10-27 01:00 UTC: +02 becomes +00, so local 01:00 and 02:00 come after 02:00.
    troll = ZoneInfo("Antarctica/Troll")
    assert lengths(utc(2024, 10, 27), utc(2024, 10, 27, 4), "hour", troll) == [H] * 4


def test_kathmandu_hours_start_at_a_quarter_past_utc_hours() -> None:
    edges = boundaries(utc(2024, 5, 1), utc(2024, 5, 2), "hour", KTM)
    assert all(b % H == 15 * 60 for b in edges)
    assert len(edges) == 26  # 24 hours not aligned on the zone: snapped out to 25 buckets


# -- weeks and months ------------------------------------------------------------------


def test_weeks_start_on_monday_at_local_midnight() -> None:
    wednesday = at(CPH, 2024, 10, 30, 15)
    start = bucket_start(wednesday, "week", CPH)
    assert start == at(CPH, 2024, 10, 28)
    assert datetime.fromtimestamp(start, CPH).weekday() == 0
    # The week holding the autumn change is 7 days and one hour.
    assert (
        next_bucket(at(CPH, 2024, 10, 21), "week", CPH) - at(CPH, 2024, 10, 21) == (7 * 24 + 1) * H
    )


def test_months_follow_the_calendar() -> None:
    assert lengths(at(CPH, 2024, 2, 10), at(CPH, 2024, 2, 11), "month", CPH) == [29 * 24 * H]
    assert lengths(at(CPH, 2024, 3, 10), at(CPH, 2024, 3, 11), "month", CPH) == [(31 * 24 - 1) * H]
    edges = boundaries(utc(2023, 12, 15), utc(2024, 1, 15), "month", ZoneInfo("UTC"))
    assert edges == [utc(2023, 12, 1), utc(2024, 1, 1), utc(2024, 2, 1)]


# -- snapping and limits ---------------------------------------------------------------


def test_a_range_is_snapped_out_to_whole_buckets() -> None:
    edges = boundaries(utc(2024, 5, 1, 10, 30), utc(2024, 5, 3, 0, 0, 1), "day", ZoneInfo("UTC"))
    assert edges == [utc(2024, 5, 1), utc(2024, 5, 2), utc(2024, 5, 3), utc(2024, 5, 4)]
    exact = boundaries(utc(2024, 5, 1), utc(2024, 5, 3), "day", ZoneInfo("UTC"))
    assert exact == [utc(2024, 5, 1), utc(2024, 5, 2), utc(2024, 5, 3)]


def test_more_buckets_than_the_limit_is_refused() -> None:
    start = utc(2024, 1, 1)
    assert len(boundaries(start, start + 2500 * H, "hour", ZoneInfo("UTC"))) == 2501
    with pytest.raises(TooManyBuckets) as caught:
        boundaries(start, start + 2501 * H, "hour", ZoneInfo("UTC"))
    assert caught.value.limit == 2500
    with pytest.raises(TooManyBuckets):
        boundaries(0, 99_999_999_999, "hour", ZoneInfo("UTC"))


# -- every instant is in the bucket of its local calendar unit -------------------------


@settings(max_examples=400, deadline=None)
@given(
    epoch=st.integers(min_value=utc(1990, 1, 1), max_value=utc(2037, 1, 1)),
    zone=st.sampled_from(ODD_ZONES),
    interval=st.sampled_from(INTERVALS),
)
def test_bucket_holds_exactly_the_instants_of_one_local_unit(
    epoch: int, zone: ZoneInfo, interval: str
) -> None:
    start = bucket_start(epoch, interval, zone)
    end = next_bucket(start, interval, zone)
    assert start <= epoch < end
    unit = calendar_unit(epoch, interval, zone)
    assert calendar_unit(start, interval, zone) == unit
    assert calendar_unit(end - 1, interval, zone) == unit
    assert calendar_unit(start - 1, interval, zone) != unit
    assert calendar_unit(end, interval, zone) != unit


# -- a range's boundaries are the chain of next_bucket ---------------------------------


def chained(start: int, end: int, interval: str, zone: ZoneInfo) -> list[int]:
    out = [bucket_start(start, interval, zone)]
    while out[-1] < end or len(out) == 1:
        out.append(next_bucket(out[-1], interval, zone))
    return out


@settings(max_examples=600, deadline=None)
@given(
    epoch=st.integers(min_value=utc(1990, 1, 1), max_value=utc(2037, 1, 1)),
    zone=st.sampled_from(ODD_ZONES),
    interval=st.sampled_from(INTERVALS),
    count=st.integers(min_value=0, max_value=60),
)
def test_boundaries_are_the_chain_of_next_bucket(
    epoch: int, zone: ZoneInfo, interval: str, count: int
) -> None:
    end = (
        epoch + count * {"hour": H, "day": 86400, "week": 7 * 86400, "month": 31 * 86400}[interval]
    )
    edges = boundaries(epoch, end, interval, zone)
    assert edges == chained(epoch, end, interval, zone)
    for a, b in itertools.pairwise(edges):
        assert calendar_unit(a, interval, zone) == calendar_unit(b - 1, interval, zone)
        assert calendar_unit(a - 1, interval, zone) != calendar_unit(a, interval, zone)


@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize(
    ("zone", "wall"),
    [
        (ZoneInfo("Pacific/Apia"), (2011, 12, 20)),  # 2011-12-30 never happened there
        (ZoneInfo("America/Havana"), (2024, 3, 1)),  # 2024-03-10 00:00 was skipped
        (ZoneInfo("America/Havana"), (2024, 10, 20)),  # 2024-11-03 00:00 came twice
        (CPH, (2024, 1, 1)),
    ],
)
def test_a_year_of_buckets_across_odd_changes(
    zone: ZoneInfo, wall: tuple[int, int, int], interval: str
) -> None:
    start = at(zone, *wall)
    end = start + (100 if interval == "hour" else 400) * {"hour": H}.get(interval, 86400)
    assert boundaries(start, end, interval, zone) == chained(start, end, interval, zone)
