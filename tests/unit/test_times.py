"""Wire times -> epoch seconds UTC."""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kpihub.ingest.times import MAX_EPOCH_SECONDS, InvalidTime, parse_time
from tests.strategies import JSON_VALUES

UTC_ZONE = ZoneInfo("UTC")
CPH = ZoneInfo("Europe/Copenhagen")
ARTICLE_TIME = "2019-09-10 13:09:23"


def test_article_time_in_utc_and_copenhagen() -> None:
    assert parse_time(ARTICLE_TIME, UTC_ZONE) == 1568120963
    # CEST is UTC+2 in September.
    assert parse_time(ARTICLE_TIME, CPH) == 1568113763


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1568120963, 1568120963),
        (1568120963.9, 1568120963),
        (0, 0),
        (0.5, 0),
        (MAX_EPOCH_SECONDS - 1, MAX_EPOCH_SECONDS - 1),
        ("1568120963", 1568120963),
        ("1568120963.9", 1568120963),
        ("1.5e9", 1500000000),
        ("2019-09-10T13:09:23+02:00", 1568113763),
        ("2019-09-10T11:09:23Z", 1568113763),
        ("2019-09-10T13:09:23.5Z", 1568120963),
        ("2019-09-10T13:09:23.123456789Z", 1568120963),
        ("2019-09-10 13:09:23Z", 1568120963),
        ("2019-09-10 13:09:23-01:30", 1568120963 + 5400),
        ("2019-09-10t13:09:23z", 1568120963),
        ("1970-01-01 00:00:00", 0),
        ("9999-12-31T23:59:59Z", 253402300799),
    ],
)
def test_accepted_forms(value: object, expected: int) -> None:
    result = parse_time(value, UTC_ZONE)
    assert type(result) is int
    assert result == expected


def test_offset_wins_over_the_tenant_zone() -> None:
    assert parse_time("2019-09-10T13:09:23Z", CPH) == 1568120963
    assert parse_time(1568120963, CPH) == 1568120963


def test_dst_gap_uses_the_offset_before_the_jump() -> None:
    # 02:30 does not exist on 2024-03-31 in Copenhagen; fold=0 reads it with
    # CET (+01:00), which is 01:30 UTC.
    assert parse_time("2024-03-31 02:30:00", CPH) == int(
        datetime(2024, 3, 31, 1, 30, tzinfo=UTC).timestamp()
    )


def test_dst_overlap_uses_the_first_occurrence() -> None:
    # 02:30 happens twice on 2024-10-27; fold=0 is the first one, still CEST.
    assert parse_time("2024-10-27 02:30:00", CPH) == int(
        datetime(2024, 10, 27, 0, 30, tzinfo=UTC).timestamp()
    )


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        (
            1568120963000,
            ["got 1568120963000", "looks like milliseconds; divide by 1000", "1568120963"],
        ),
        ("1568120963000", ["got '1568120963000'", "looks like milliseconds"]),
        (MAX_EPOCH_SECONDS, ["looks like milliseconds"]),
        (1568120963000000, ["looks like microseconds; divide by 1000000"]),
        (1568120963000000000, ["looks like nanoseconds"]),
        (10**30, ["must be epoch seconds below 100000000000"]),
        (-1, ["got -1", "before 1970-01-01", "0 or more"]),
        ("-5", ["got '-5'", "before 1970-01-01"]),
        (float("nan"), ["finite number", "got nan"]),
        (float("inf"), ["finite number"]),
        (True, ["got true", "epoch seconds (e.g. 1568120963)"]),
        (None, ["got null", "'Y-m-d H:i:s'"]),
        ([ARTICLE_TIME], ["got an array", "RFC 3339"]),
        ({}, ["got an object"]),
        ("", ["got an empty string", "'Y-m-d H:i:s'"]),
        ("yesterday", ["got 'yesterday'", "RFC 3339 with an offset"]),
        ("10/09/2019 13:09:23", ["got '10/09/2019 13:09:23'", "'Y-m-d H:i:s'"]),
        (
            "2019-09-10T13:09:23",
            [
                "got '2019-09-10T13:09:23'",
                "Add an offset",
                "'2019-09-10T13:09:23Z'",
                "'2019-09-10 13:09:23'",
                "UTC",
            ],
        ),
        ("2019-09-10 13:09:23.5", ["without fractional seconds", "'2019-09-10 13:09:23'"]),
        ("2019-09-10", ["got '2019-09-10'", "Add a time of day", "'2019-09-10 00:00:00'"]),
        ("2019-09-10 13:09", ["Add the seconds", "'2019-09-10 13:09:00'"]),
        (" 2019-09-10 13:09:23", ["Remove the surrounding whitespace", f"'{ARTICLE_TIME}'"]),
        ("2019-02-30 10:00:00", ["got '2019-02-30 10:00:00'", "day is out of range"]),
        ("2019-09-10 25:00:00", ["hour must be in 0..23"]),
        ("2019-09-10T23:59:60Z", ["second must be in 0..59"]),
        ("1969-12-31 23:59:59", ["between the years 1970 and 9999"]),
        ("0000-01-01 00:00:00", ["between the years 1970 and 9999"]),
        ("1970-01-01T00:30:00+01:00", ["before 1970-01-01"]),
        ("2019-09-10T13:09:23+24:00", ["got '2019-09-10T13:09:23+24:00'", "-23:59"]),
        ("2019-09-10T13:09:23+02:60", ["UTC offset between"]),
        ("1" * 100, ["characters)"]),
    ],
)
def test_rejected_with_a_hint(value: object, fragments: list[str]) -> None:
    with pytest.raises(InvalidTime) as info:
        parse_time(value, UTC_ZONE)
    message = str(info.value)
    assert message.startswith("must ")
    for fragment in fragments:
        assert fragment in message


def test_t_without_offset_names_the_tenant_zone() -> None:
    with pytest.raises(InvalidTime, match="Europe/Copenhagen"):
        parse_time("2019-09-10T13:09:23", CPH)


def test_local_time_before_1970_in_utc_is_rejected() -> None:
    with pytest.raises(InvalidTime, match="before 1970-01-01"):
        parse_time("1970-01-01 00:30:00", CPH)


def test_invalid_time_is_a_value_error() -> None:
    assert issubclass(InvalidTime, ValueError)


@given(st.integers(min_value=0, max_value=MAX_EPOCH_SECONDS - 1))
def test_epoch_integers_round_trip(epoch: int) -> None:
    assert parse_time(epoch, UTC_ZONE) == epoch
    assert parse_time(str(epoch), CPH) == epoch


@given(st.integers(min_value=0, max_value=253402300799))
def test_ymd_his_in_utc_round_trips(epoch: int) -> None:
    text = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert parse_time(text, UTC_ZONE) == epoch


_OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=_OFFSETS
    ),
    st.sampled_from(["T", " "]),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
def test_rfc3339_strings_round_trip(moment: datetime, sep: str, timespec: str) -> None:
    text = moment.isoformat(sep=sep, timespec=timespec)
    if text.endswith("+00:00") and moment.microsecond % 2:
        text = text[: -len("+00:00")] + "Z"
    expected = int(moment.replace(microsecond=0).timestamp())
    assert parse_time(text, CPH) == expected


@given(st.text(max_size=50))
def test_arbitrary_text_returns_an_epoch_or_invalid_time(text: str) -> None:
    try:
        result = parse_time(text, CPH)
    except InvalidTime as exc:
        assert str(exc).startswith("must ")
    else:
        assert result >= 0


@given(
    st.from_regex(
        r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
        r"(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?\Z"
    )
)
def test_datetime_shaped_text_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidTime):
        assert parse_time(text, CPH) >= 0


_ZONES = st.sampled_from(
    [
        "UTC",
        "Europe/Copenhagen",
        "America/New_York",
        "Australia/Lord_Howe",  # 30-minute DST shift
        "Asia/Kathmandu",  # +05:45
        "Pacific/Kiritimati",  # +14:00
        "America/St_Johns",  # -03:30, DST
    ]
).map(ZoneInfo)


# A day inside 1970..9999 on both ends, so the wall-clock year is in range in every zone.
@given(st.integers(min_value=86400, max_value=253402214400), _ZONES)
# Repeated wall-clock times (clocks going back), which random epochs rarely hit.
@example(1729992600, CPH)  # 2024-10-27 02:30 CET, the second 02:30
@example(1729992600 - 3600, CPH)  # ... and the first, 02:30 CEST
@example(1712416500, ZoneInfo("Australia/Lord_Howe"))  # 01:45 the second time
def test_ymd_his_round_trips_in_any_zone(epoch: int, zone: ZoneInfo) -> None:
    local = datetime.fromtimestamp(epoch, zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    parsed = parse_time(text, zone)
    if local.fold == 0:
        assert parsed == epoch
    else:
        # The second of a repeated wall-clock time reads as the first (fold=0).
        assert parsed < epoch
    assert datetime.fromtimestamp(parsed, zone).strftime("%Y-%m-%d %H:%M:%S") == text


@given(st.floats(min_value=0, max_value=MAX_EPOCH_SECONDS, exclude_max=True))
def test_epoch_floats_are_floored(value: float) -> None:
    assert parse_time(value, UTC_ZONE) == math.floor(value)
    assert parse_time(repr(value), UTC_ZONE) == math.floor(value)


@given(JSON_VALUES, _ZONES)
def test_any_json_value_is_an_epoch_or_invalid_time(value: object, zone: ZoneInfo) -> None:
    try:
        result = parse_time(value, zone)
    except InvalidTime as exc:
        assert str(exc).startswith("must ")
    else:
        assert type(result) is int
        assert 0 <= result < MAX_EPOCH_SECONDS + 14 * 3600
