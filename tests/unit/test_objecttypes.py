"""The object type registry and the ``number`` type."""

from __future__ import annotations

import contextlib
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpihub.ingest import InvalidValue
from kpihub.ingest.objecttypes import REGISTRY, get, names
from kpihub.ingest.objecttypes.number import TYPE as NUMBER
from kpihub.ingest.objecttypes.number import strict_float
from tests.strategies import JSON_VALUES


def test_registry_knows_number() -> None:
    assert "number" in names()
    assert get("number") is NUMBER
    assert REGISTRY["number"].name == "number"
    assert get("Number") is None
    assert get("text") is None


def test_registry_keys_are_the_types_names() -> None:
    for name, kind in REGISTRY.items():
        assert kind.name == name


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        ("100", 100.0),
        ("150.00", 150.0),
        ("-1.5e3", -1500.0),
        ("+3", 3.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1E5", 100000.0),
        ("-0", 0.0),
        ("0.000001", 1e-6),
        (100, 100.0),
        (-7, -7.0),
        (1.5, 1.5),
        (10**20, 1e20),
        (0, 0.0),
    ],
)
def test_number_accepts(given_value: object, expected: float) -> None:
    result = NUMBER.parse(given_value)
    assert type(result) is float
    assert result == expected


@pytest.mark.parametrize(
    ("given_value", "fragments"),
    [
        ("1,5", ["got '1,5'", "Use '.' as the decimal separator, e.g. '1.5'."]),
        ("1,000.50", ["got '1,000.50'", "no thousands separators", "'1000.50'"]),
        ("", ["empty string", "e.g. 100"]),
        (" 12 ", ["got ' 12 '", "Remove the surrounding whitespace", "'12'"]),
        ("12\n", ["Remove the surrounding whitespace"]),
        ("NaN", ["got 'NaN'", "NaN and infinity cannot be stored"]),
        ("nan", ["got 'nan'", "finite number"]),
        ("inf", ["got 'inf'", "finite number"]),
        ("-Infinity", ["got '-Infinity'", "finite number"]),
        ("1e400", ["got '1e400'", "overflows a 64-bit float"]),
        ("0x1A", ["got '0x1A'", "Hexadecimal", "'26'"]),
        ("1_000", ["got '1_000'", "'_'", "'1000'"]),
        ("١٢", ["ASCII digits"]),
        ("abc", ["got 'abc'", "'.' as the decimal separator"]),
        ("12 345", ["got '12 345'", "e.g. 100"]),
        (True, ["got true", "Booleans are not numbers; send 1 or 0"]),
        (False, ["got false"]),
        (None, ["got null", "e.g. 100"]),
        ([1], ["got an array ([1])", "single number"]),
        ({"a": 1}, ["got an object", "single number"]),
        (float("nan"), ["must be a finite number", "got nan"]),
        (float("inf"), ["must be a finite number", "got inf"]),
        (10**400, ["fits a 64-bit float", "an integer of about"]),
    ],
)
def test_number_rejects_with_a_hint(given_value: object, fragments: list[str]) -> None:
    with pytest.raises(InvalidValue) as info:
        NUMBER.parse(given_value)
    message = str(info.value)
    assert message.startswith("must be a")
    for fragment in fragments:
        assert fragment in message


def test_number_error_truncates_long_values() -> None:
    with pytest.raises(InvalidValue) as info:
        NUMBER.parse("x" * 1000)
    assert len(str(info.value)) < 300
    assert "(1000 characters)" in str(info.value)


def test_number_error_for_huge_hex_does_not_crash() -> None:
    with pytest.raises(InvalidValue):
        NUMBER.parse("0x" + "f" * 5000)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_agrees_with_float_on_finite_floats(value: float) -> None:
    assert NUMBER.parse(value) == value
    assert NUMBER.parse(repr(value)) == value
    assert NUMBER.parse(f"{value:e}") == float(f"{value:e}")


@given(st.integers(min_value=-(10**300), max_value=10**300))
def test_number_accepts_integers_and_integer_strings(value: int) -> None:
    assert NUMBER.parse(value) == float(value)
    assert NUMBER.parse(str(value)) == float(str(value))


@given(st.text())
def test_number_on_arbitrary_text_returns_a_finite_float_or_invalid_value(text: str) -> None:
    try:
        result = NUMBER.parse(text)
    except InvalidValue as exc:
        assert str(exc).startswith("must be a")
    else:
        assert math.isfinite(result)
        assert result == float(text)
        assert text.isascii()
        assert text == text.strip()


@given(st.text(alphabet="0123456789+-.eE,_ xXaAnNiIfF", max_size=12))
def test_number_on_numberish_text_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidValue):
        NUMBER.parse(text)


def test_strict_float() -> None:
    assert strict_float("1.5") == 1.5
    assert strict_float(" 1.5") is None
    assert strict_float("1_0") is None
    assert strict_float("inf") is None
    assert strict_float("") is None


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_round_trips_through_json_and_formatting(value: float) -> None:
    # What a client's JSON library or string formatting sends, back as the same float.
    assert NUMBER.parse(json.loads(json.dumps(value))) == value
    assert NUMBER.parse(json.dumps(value)) == value
    assert NUMBER.parse(format(value, ".17g")) == value
    assert NUMBER.parse(f"{value:.17e}") == value


@given(JSON_VALUES)
def test_number_on_any_json_value_is_a_finite_float_or_invalid_value(value: object) -> None:
    try:
        result = NUMBER.parse(value)
    except InvalidValue as exc:
        assert str(exc).startswith("must be a")
    else:
        assert type(result) is float
        assert math.isfinite(result)
        assert type(value) in (int, float, str)


@given(st.integers(min_value=10**309, max_value=10**400) | st.integers(max_value=-(10**309)))
def test_number_refuses_integers_beyond_a_float(value: int) -> None:
    with pytest.raises(InvalidValue, match="fits a 64-bit float"):
        NUMBER.parse(value)
    with pytest.raises(InvalidValue, match="overflows a 64-bit float"):
        NUMBER.parse(str(value))
