"""Times on the wire, turned into epoch seconds UTC.

Accepted forms (DESIGN §1):

* epoch seconds, as a JSON number or a numeric string (``1568120963``,
  ``"1568120963"``, ``1568120963.5``); fractions are floored;
* ``"Y-m-d H:i:s"`` exactly (``"2019-09-10 13:09:23"``), a wall-clock time in
  the tenant's time zone;
* RFC 3339 with an offset (``"2019-09-10T13:09:23+02:00"``,
  ``"2019-09-10T13:09:23.5Z"``; a space may replace the ``T``).

Epoch numbers must be in ``0 <= n < 100_000_000_000``: anything larger is
almost certainly milliseconds (or micro-/nanoseconds) and is rejected with a
hint rather than stored in the year 51000. Times before 1970 and years
outside 1970..9999 are rejected.

This is the ingestion hot path. String times repeat a lot within and across
batches, so string parsing is memoised; only successes are cached (an
exception escapes ``lru_cache`` without being stored).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from kpihub.ingest import InvalidValue, described, show
from kpihub.ingest.objecttypes.number import strict_float

__all__ = ["MAX_EPOCH_SECONDS", "InvalidTime", "parse_time"]

MAX_EPOCH_SECONDS: Final = 100_000_000_000
"""Exclusive upper bound for epoch numbers (year 5138); larger looks like milliseconds."""

_FORMS: Final = (
    "Send epoch seconds (e.g. 1568120963), 'Y-m-d H:i:s' in the tenant's time zone "
    "(e.g. '2019-09-10 13:09:23') or RFC 3339 with an offset (e.g. '2019-09-10T13:09:23Z')."
)
# Longer strings cannot be a time we accept; the bound keeps junk out of the cache.
_MAX_TEXT: Final = 40

# Only classifies; datetime.fromisoformat does the range checks.
# Groups: 1 date, 2 year, 3 separator, 4 time, 5 fraction, 6 offset.
_DATETIME: Final = re.compile(
    r"(([0-9]{4})-[0-9]{2}-[0-9]{2})([Tt ])([0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_DATE_ONLY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NO_SECONDS: Final = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}:[0-9]{2})")
_DIGITS: Final = re.compile(r"[0-9]+", re.ASCII)

_TOO_BIG: Final = (
    (MAX_EPOCH_SECONDS * 1_000, "milliseconds", 1_000),
    (MAX_EPOCH_SECONDS * 1_000_000, "microseconds", 1_000_000),
    (MAX_EPOCH_SECONDS * 1_000_000_000, "nanoseconds", 1_000_000_000),
)


class InvalidTime(InvalidValue):
    """A time that cannot be accepted; the message says why and what to send."""


def parse_time(value: object, tz: ZoneInfo) -> int:
    """Epoch seconds UTC for a wire time, or :class:`InvalidTime`.

    ``"Y-m-d H:i:s"`` is read in ``tz``. A wall-clock time that does not
    exist (skipped by a DST jump) or exists twice (repeated when clocks go
    back) is resolved with ``fold=0`` semantics: the UTC offset in force
    *before* the transition is used. So in Europe/Copenhagen
    ``"2024-03-31 02:30:00"`` is 01:30 UTC and ``"2024-10-27 02:30:00"`` is
    the first (summer-time) 02:30, i.e. 00:30 UTC. Senders who care should
    use epoch seconds or RFC 3339 with an offset.
    """
    if type(value) is str:
        return _parse_text(value, tz)
    if type(value) is int:
        return _check_epoch(value, value)
    if type(value) is float:
        if value - value != 0.0:
            raise InvalidTime(
                f"must be a finite number of epoch seconds; got {show(value)}. " + _FORMS
            )
        return _check_epoch(math.floor(value), value)
    raise InvalidTime(f"must be a time; got {described(value)}. {_FORMS}")


def _check_epoch(seconds: int, given: object) -> int:
    if 0 <= seconds < MAX_EPOCH_SECONDS:
        return seconds
    if seconds < 0:
        raise InvalidTime(
            f"must not be before 1970-01-01 00:00:00 UTC; got {show(given)}. "
            "Epoch seconds must be 0 or more."
        )
    for bound, unit, divisor in _TOO_BIG:
        if seconds < bound:
            raise InvalidTime(
                f"must be epoch seconds; got {show(given)}, which looks like {unit}; "
                f"divide by {divisor} (e.g. {seconds // divisor})."
            )
    raise InvalidTime(
        f"must be epoch seconds below {MAX_EPOCH_SECONDS}; got {show(given)}. {_FORMS}"
    )


@lru_cache(maxsize=8192)
def _parse_text(text: str, tz: ZoneInfo) -> int:
    if len(text) > _MAX_TEXT:
        raise InvalidTime(f"must be a time; got {show(text)}. {_FORMS}")
    if len(text) >= 19 and text[4] == "-":
        match = _DATETIME.fullmatch(text)
        if match is not None:
            return _parse_datetime(text, match, tz)
    elif _DIGITS.fullmatch(text):
        return _check_epoch(int(text), text)
    else:
        number = strict_float(text)
        if number is not None:
            return _check_epoch(math.floor(number), text)
    raise InvalidTime(_explain(text, tz))


def _parse_datetime(text: str, match: re.Match[str], tz: ZoneInfo) -> int:
    date, year, sep, clock, fraction, offset = match.groups()
    if not "1970" <= year <= "9999":
        raise InvalidTime(
            f"must be a time between the years 1970 and 9999; got {show(text)}. {_FORMS}"
        )
    if offset is None:
        if sep != " ":
            raise InvalidTime(
                f"must be a time with a UTC offset when written with 'T'; got {show(text)}. "
                f"Add an offset (e.g. '{date}T{clock}Z' or '{date}T{clock}+02:00'), or write "
                f"'{date} {clock}' to mean the tenant's time zone ({tz})."
            )
        if fraction is not None:
            raise InvalidTime(
                f"must be 'Y-m-d H:i:s' without fractional seconds, or carry a UTC offset; "
                f"got {show(text)}. Send '{date} {clock}' or '{date}T{clock}{fraction}Z'."
            )
        try:
            local = datetime.fromisoformat(text).replace(tzinfo=tz)
        except ValueError as exc:
            raise InvalidTime(
                f"must be a valid date and time; got {show(text)} ({exc}). {_FORMS}"
            ) from None
        epoch = int(local.timestamp())
    else:
        # The fraction is dropped rather than parsed: flooring to whole seconds
        # gives the same result, and fromisoformat in 3.11 is picky about it.
        zone = "+00:00" if offset in ("Z", "z") else offset
        if zone[1:3] > "23" or zone[4:6] > "59":
            raise InvalidTime(
                f"must have a UTC offset between -23:59 and +23:59; got {show(text)}. "
                f"Send e.g. '{date}T{clock}+02:00' or '{date}T{clock}Z'."
            )
        try:
            moment = datetime.fromisoformat(f"{date}T{clock}{zone}")
        except ValueError as exc:
            raise InvalidTime(
                f"must be a valid date and time; got {show(text)} ({exc}). {_FORMS}"
            ) from None
        epoch = int(moment.timestamp())
    if epoch < 0:
        raise InvalidTime(f"must not be before 1970-01-01 00:00:00 UTC; got {show(text)}. {_FORMS}")
    return epoch


def _explain(text: str, tz: ZoneInfo) -> str:
    got = f"must be a time; got {show(text) if text else 'an empty string'}."
    stripped = text.strip()
    if stripped != text and stripped:
        try:
            _parse_text(stripped, tz)
        except InvalidTime:
            pass
        else:
            return f"{got} Remove the surrounding whitespace: {show(stripped)}."
    if _DATE_ONLY.fullmatch(stripped):
        return f"{got} Add a time of day, e.g. '{stripped} 00:00:00'."
    no_seconds = _NO_SECONDS.fullmatch(stripped)
    if no_seconds is not None:
        return f"{got} Add the seconds, e.g. '{no_seconds[1]} {no_seconds[2]}:00'."
    return f"{got} {_FORMS}"
