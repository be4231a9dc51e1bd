"""The ``number`` object type: the value is a finite decimal number.

Accepted: a JSON number (not ``true``/``false``) or a string in integer,
float, real or double notation — optional sign, digits, optional fraction,
optional exponent (``"100"``, ``"150.00"``, ``"-1.5e3"``, ``".5"``, ``"5."``).
Rejected with a hint: surrounding whitespace, ``"1,5"``, digit separators
(``"1_000"``), hexadecimal, NaN, infinity and anything that overflows a
64-bit float. Integers beyond 2**53 lose precision (they become floats).
"""

from __future__ import annotations

import math
import re
from typing import Final

from kpihub.ingest import InvalidValue, described, show

__all__ = ["TYPE", "NumberType", "strict_float"]

_EXAMPLE = "e.g. 100 or '150.00'"
_HEX = re.compile(r"[+-]?0[xX][0-9a-fA-F]+", re.ASCII)
_NON_FINITE = re.compile(r"[+-]?(nan|inf|infinity)", re.ASCII | re.IGNORECASE)


def strict_float(text: str) -> float | None:
    """``float(text)`` restricted to the plain ASCII notation above, or None.

    ``float()`` alone is too lenient for a wire format (it strips whitespace,
    allows ``_`` separators, non-ASCII digits, "nan" and "inf"), but it is much
    faster than a regex; the cheap checks afterwards close those doors.
    """
    try:
        result = float(text)
    except ValueError:
        return None
    # All the whitespace float() strips sorts at or below " " in ASCII; the
    # non-ASCII kinds are caught by isascii().
    if (
        result - result == 0.0  # false for nan and ±inf
        and text[0] > " "
        and text[-1] > " "
        and "_" not in text
        and text.isascii()
    ):
        return result
    return None


class NumberType:
    name: Final = "number"

    def parse(self, value: object) -> float:
        if type(value) is str:
            result = strict_float(value)
            if result is not None:
                return result
            raise InvalidValue(_explain_string(value))
        if type(value) is float:
            if value - value == 0.0:
                return value
            raise InvalidValue(
                f"must be a finite number; got {show(value)}. NaN and infinity cannot be "
                f"stored; send a finite number, {_EXAMPLE}."
            )
        if type(value) is int:
            try:
                return float(value)
            except OverflowError:
                raise InvalidValue(
                    f"must be a number that fits a 64-bit float; got {show(value)}. "
                    f"Send a smaller number, {_EXAMPLE}."
                ) from None
        if value is True or value is False:
            raise InvalidValue(
                f"must be a number; got {show(value)}. Booleans are not numbers; send 1 or 0."
            )
        if value is None:
            raise InvalidValue(f"must be a number; got null. Send a number, {_EXAMPLE}.")
        if isinstance(value, list | dict):
            raise InvalidValue(
                f"must be a number; got {described(value)}. Send a single number, {_EXAMPLE}."
            )
        raise InvalidValue(f"must be a number; got {show(value)}. Send a number, {_EXAMPLE}.")


def _explain_string(text: str) -> str:
    got = f"must be a number; got {show(text)}."
    if not text:
        return f"must be a number; got an empty string. Send a number, {_EXAMPLE}."
    stripped = text.strip()
    if stripped != text and strict_float(stripped) is not None:
        return f"{got} Remove the surrounding whitespace, e.g. {show(stripped)}."
    if "," in stripped:
        if stripped.count(",") == 1 and "." not in stripped:
            fixed = stripped.replace(",", ".")
            fix = "Use '.' as the decimal separator"
        else:
            fixed = stripped.replace(",", "")
            fix = "Use '.' as the decimal separator and no thousands separators"
        example = f", e.g. {show(fixed)}" if strict_float(fixed) is not None else ""
        return f"{got} {fix}{example}."
    if "_" in stripped and strict_float(stripped.replace("_", "")) is not None:
        return f"{got} Remove the '_' digit separators, e.g. {show(stripped.replace('_', ''))}."
    if len(stripped) <= 18 and _HEX.fullmatch(stripped):
        return f"{got} Hexadecimal is not accepted; send decimal, e.g. '{int(stripped, 16)}'."
    if _NON_FINITE.fullmatch(stripped):
        return f"{got} NaN and infinity cannot be stored; send a finite number, {_EXAMPLE}."
    if stripped.isascii():
        try:
            parsed = float(stripped)
        except ValueError:
            pass
        else:
            if math.isinf(parsed):
                return (
                    f"{got} It overflows a 64-bit float (largest is about 1.8e308); "
                    "send a smaller number."
                )
    else:
        return f"{got} Use ASCII digits 0-9 only, {_EXAMPLE}."
    return (
        f"{got} Send an integer or decimal number with '.' as the decimal separator "
        f"and an optional exponent, {_EXAMPLE} or '-1.5e3'."
    )


TYPE: Final = NumberType()
