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
    zone=st.sampled_from(ZONES),
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
