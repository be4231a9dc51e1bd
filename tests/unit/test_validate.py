"""validate_batch: the article's body, every rule, and fuzzing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpihub.domain import DataPoint, ParsedBatch
from kpihub.errors import PayloadTooLarge, ValidationFailed
from kpihub.ingest.times import MAX_EPOCH_SECONDS
from kpihub.ingest.validate import validate_batch
from tests.batches import one_element_batch
from tests.strategies import JSON_VALUES

UTC_ZONE = ZoneInfo("UTC")
CPH = ZoneInfo("Europe/Copenhagen")
ARTICLE_EPOCH_UTC = 1568120963
ARTICLE_EPOCH_CPH = 1568113763
E0 = "data.0.elements.0"


def article() -> dict[str, Any]:
    text = files("kpihub").joinpath("examples/kpi-request.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def minimal(**element: object) -> dict[str, Any]:
    """A valid one-element batch; keyword arguments replace element fields (None drops)."""
    return one_element_batch("t", "u", **element)


def errors_of(doc: object, tz: ZoneInfo = UTC_ZONE) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as info:
        validate_batch(doc, tz=tz)
    return info.value.errors


def only_error(doc: object, path: str) -> str:
    errors = errors_of(doc)
    assert list(errors) == [path]
    assert len(errors[path]) == 1
    message = errors[path][0]
    assert message.startswith(f"The {path} field ")
    return message


# -- the article ---------------------------------------------------------------


def test_article_example_in_utc() -> None:
    batch = validate_batch(article(), tz=UTC_ZONE)
    assert isinstance(batch, ParsedBatch)
    assert (batch.type, batch.version, batch.context) == (
        "{{unique_integration_identifier}}",
        "1.0.0",
        "sales",
    )
    assert len(batch.points) == 6
    assert [p.element_id for p in batch.points] == ["1", "2", "3", "4", "5", "6"]
    assert [p.value for p in batch.points] == [100.0, 150.0, 100.0, 250.0, 100.0, 150.0]
    assert [(p.user_id, p.location_id) for p in batch.points] == [
        ("123", "321"),
        ("123", "321"),
        ("89", None),
        ("89", None),
        (None, "3"),
        (None, "3"),
    ]
    assert batch.points[0] == DataPoint(
        element_id="1",
        kpi="device_sales",
        object_type="number",
        value=100.0,
        units="Devices sold",
        timestamp=ARTICLE_EPOCH_UTC,
        date_from=ARTICLE_EPOCH_UTC,
        date_to=ARTICLE_EPOCH_UTC,
        user_id="123",
        location_id="321",
    )
    for point in batch.points:
        assert point.timestamp == point.date_from == point.date_to == ARTICLE_EPOCH_UTC


def test_article_example_in_copenhagen() -> None:
    batch = validate_batch(article(), tz=CPH)
    assert {p.timestamp for p in batch.points} == {ARTICLE_EPOCH_CPH}
    assert {p.date_to for p in batch.points} == {ARTICLE_EPOCH_CPH}


def test_article_example_file_is_the_one_in_the_package() -> None:
    raw = files("kpihub").joinpath("examples/kpi-request.json").read_bytes()
    assert b'"type": "{{unique_integration_identifier}}"' in raw


# -- top level ------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "x", 1, None, True])
def test_body_must_be_an_object(body: object) -> None:
    errors = errors_of(body)
    assert list(errors) == ["body"]
    assert "must be a JSON object" in errors["body"][0]


def test_unknown_top_level_keys_are_ignored() -> None:
    doc = minimal()
    doc["extra"] = {"anything": [1]}
    assert len(validate_batch(doc, tz=UTC_ZONE).points) == 1


@pytest.mark.parametrize("key", ["type", "context"])
def test_required_text_fields(key: str) -> None:
    doc = minimal()
    del doc[key]
    assert "is required." in only_error(doc, key)
    doc[key] = None
    assert "is required; got null." in only_error(doc, key)
    doc[key] = ""
    assert "must not be empty" in only_error(doc, key)
    doc[key] = 5
    message = only_error(doc, key)
    assert "must be a string; got 5." in message
    assert "e.g." in message
    doc[key] = "x" * 256
    message = only_error(doc, key)
    assert "at most 255 characters; got 256 characters ('xxxx" in message
    assert "Shorten it" in message
    doc[key] = "x" * 255
    validate_batch(doc, tz=UTC_ZONE)


def test_type_accepts_any_string() -> None:
    doc = minimal()
    doc["type"] = "{{unique_integration_identifier}}"
    assert validate_batch(doc, tz=UTC_ZONE).type == "{{unique_integration_identifier}}"


@pytest.mark.parametrize(
    ("given_version", "stored"), [("1.0.0", "1.0.0"), (2, "2"), (1.5, "1.5"), ("v" * 64, "v" * 64)]
)
def test_version_is_stored_as_a_string(given_version: object, stored: str) -> None:
    doc = minimal()
    doc["version"] = given_version
    assert validate_batch(doc, tz=UTC_ZONE).version == stored


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (None, "is required; got null"),
        ("", "must not be empty"),
        (True, "got true"),
        ([1], "got an array ([1])"),
        ("v" * 65, "at most 64 characters"),
        (float("nan"), "got nan"),
    ],
)
def test_version_rejects(bad: object, fragment: str) -> None:
    doc = minimal()
    doc["version"] = bad
    message = only_error(doc, "version")
    assert fragment in message
    assert (
        "must be a string or a number" in message
        or "characters" in message
        or ("required" in message or "empty" in message)
    )
    assert "'1.0.0'" in message or "Shorten it" in message


def test_version_missing() -> None:
    doc = minimal()
    del doc["version"]
    assert "is required." in only_error(doc, "version")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (None, "is required"),
        ([], "must not be empty"),
        ({}, "must be an array; got an object"),
        ("x", "must be an array; got 'x'"),
    ],
)
def test_data_must_be_a_non_empty_array(data: object, fragment: str) -> None:
    doc = minimal()
    if data is None:
        del doc["data"]
    else:
        doc["data"] = data
    message = only_error(doc, "data")
    assert fragment in message
    assert "user_id and/or location_id and elements" in message


def test_data_entry_must_be_an_object() -> None:
    doc = minimal()
    doc["data"].append(7)
    message = only_error(doc, "data.1")
    assert "must be an object; got 7." in message


# -- user_id / location_id --------------------------------------------------------


def test_user_or_location_is_required() -> None:
    doc = minimal()
    del doc["data"][0]["user_id"]
    message = only_error(doc, "data.0.user_id")
    assert "is required when data.0.location_id is not present" in message
    assert "user_id" in message
    doc["data"][0]["user_id"] = None
    doc["data"][0]["location_id"] = None
    only_error(doc, "data.0.user_id")


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ({"user_id": 123}, ("123", None)),
        ({"location_id": 3}, (None, "3")),
        ({"user_id": "a", "location_id": "b"}, ("a", "b")),
        ({"user_id": None, "location_id": "b"}, (None, "b")),
    ],
)
def test_owner_ids(owner: dict[str, object], expected: tuple[str | None, str | None]) -> None:
    doc = minimal()
    entry = doc["data"][0]
    del entry["user_id"]
    entry.update(owner)
    point = validate_batch(doc, tz=UTC_ZONE).points[0]
    assert (point.user_id, point.location_id) == expected


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (True, "got true"),
        (1.5, "got 1.5"),
        ("", "must not be empty"),
        ([1], "got an array"),
        ("u" * 256, "at most 255 characters"),
        (2.0, "without a fraction, e.g. 2"),
    ],
)
def test_owner_id_rejects(bad: object, fragment: str) -> None:
    doc = minimal()
    doc["data"][0]["location_id"] = bad
    message = only_error(doc, "data.0.location_id")
    assert fragment in message


# -- elements ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elements", "fragment"),
    [(None, "is required"), ([], "must not be empty"), ({}, "got an object")],
)
def test_elements_must_be_a_non_empty_array(elements: object, fragment: str) -> None:
    doc = minimal()
    if elements is None:
        del doc["data"][0]["elements"]
    else:
        doc["data"][0]["elements"] = elements
    message = only_error(doc, "data.0.elements")
    assert fragment in message
    assert "id, kpi, object_type, value and timestamp" in message


def test_element_must_be_an_object() -> None:
    doc = minimal()
    doc["data"][0]["elements"].append("x")
    assert "must be an object; got 'x'." in only_error(doc, "data.0.elements.1")


def test_unknown_element_keys_are_ignored() -> None:
    assert validate_batch(minimal(colour="red"), tz=UTC_ZONE).points[0].kpi == "points"


@pytest.mark.parametrize(
    ("given_id", "stored"),
    [(1, "1"), ("1", "1"), ("abc-9", "abc-9"), (-4, "-4"), (10**200, str(10**200))],
)
def test_id_is_stored_as_a_string(given_id: object, stored: str) -> None:
    assert validate_batch(minimal(id=given_id), tz=UTC_ZONE).points[0].element_id == stored


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (True, "must be a string or an integer; got true."),
        (1.5, "got 1.5."),
        (1.0, "without a fraction, e.g. 1"),
        ("", "must not be empty"),
        ("i" * 256, "at most 255 characters"),
        ({"a": 1}, "got an object ({'a': 1})"),
        (10**300, "at most 255 characters"),
    ],
)
def test_id_rejects(bad: object, fragment: str) -> None:
    message = only_error(minimal(id=bad), f"{E0}.id")
    assert fragment in message


def test_id_required() -> None:
    message = only_error(minimal(id=None), f"{E0}.id")
    assert "is required." in message
    assert "e.g. 1" in message


def test_duplicate_id_within_an_entry() -> None:
    doc = minimal()
    elements = doc["data"][0]["elements"]
    elements.append(dict(elements[0], id="1"))
    message = only_error(doc, "data.0.elements.1.id")
    assert "duplicate value '1'" in message
    assert "data.0.elements.0.id already uses it" in message
    assert "its own id" in message


def test_duplicate_id_across_entries_is_reported_on_the_second_only() -> None:
    doc = article()
    doc["data"][2]["elements"][1]["id"] = 2
    doc["data"][1]["elements"][0]["id"] = 2
    errors = errors_of(doc)
    assert list(errors) == ["data.1.elements.0.id", "data.2.elements.1.id"]
    assert all("data.0.elements.1.id already uses it" in m[0] for m in errors.values())


def test_kpi() -> None:
    assert "is required." in only_error(minimal(kpi=None), f"{E0}.kpi")
    assert "must not be empty" in only_error(minimal(kpi=""), f"{E0}.kpi")
    message = only_error(minimal(kpi=3), f"{E0}.kpi")
    assert "must be a string; got 3." in message
    assert "'device_sales'" in message


def test_object_type_unknown_lists_the_registered_ones() -> None:
    message = only_error(minimal(object_type="text"), f"{E0}.object_type")
    assert "got 'text'" in message
    assert "Registered object types: 'number'." in message


def test_object_type_case_hint() -> None:
    message = only_error(minimal(object_type="Number"), f"{E0}.object_type")
    assert "send 'number'" in message


@pytest.mark.parametrize(
    ("bad", "fragment"), [(None, "is required."), (1, "got 1."), ([], "got an array ([])")]
)
def test_object_type_rejects(bad: object, fragment: str) -> None:
    message = only_error(minimal(object_type=bad), f"{E0}.object_type")
    assert fragment in message
    assert "'number'" in message


def test_value_with_a_comma_exact_message() -> None:
    doc = article()
    doc["data"][0]["elements"][1]["value"] = "1,5"
    assert errors_of(doc) == {
        "data.0.elements.1.value": [
            "The data.0.elements.1.value field must be a number; got '1,5'. "
            "Use '.' as the decimal separator, e.g. '1.5'."
        ]
    }


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("NaN", "got 'NaN'"),
        ("", "empty string"),
        (True, "got true"),
        ("1e400", "overflows"),
        ("abc", "got 'abc'"),
    ],
)
def test_value_rejects(bad: object, fragment: str) -> None:
    assert fragment in only_error(minimal(value=bad), f"{E0}.value")


def test_value_required() -> None:
    message = only_error(minimal(value=None), f"{E0}.value")
    assert "is required. Send the KPI's value for object_type 'number'." in message


def test_value_not_judged_when_object_type_is_unknown() -> None:
    errors = errors_of(minimal(object_type="nope", value="abc"))
    assert list(errors) == [f"{E0}.object_type"]


@pytest.mark.parametrize(("value", "stored"), [(5, 5.0), ("-1.5e3", -1500.0), (0.25, 0.25)])
def test_value_is_a_float(value: object, stored: float) -> None:
    assert validate_batch(minimal(value=value), tz=UTC_ZONE).points[0].value == stored


def test_units_optional() -> None:
    assert validate_batch(minimal(), tz=UTC_ZONE).points[0].units is None
    doc = minimal()
    doc["data"][0]["elements"][0]["units"] = None
    assert validate_batch(doc, tz=UTC_ZONE).points[0].units is None
    assert validate_batch(minimal(units="%"), tz=UTC_ZONE).points[0].units == "%"
    assert validate_batch(minimal(units=""), tz=UTC_ZONE).points[0].units == ""


@pytest.mark.parametrize(
    ("bad", "fragment"), [(5, "must be a string; got 5."), ("u" * 256, "at most 255 characters")]
)
def test_units_rejects(bad: object, fragment: str) -> None:
    message = only_error(minimal(units=bad), f"{E0}.units")
    assert fragment in message
    assert "'Eur'" in message or "Shorten it" in message


# -- times --------------------------------------------------------------------------


def test_timestamp_required() -> None:
    message = only_error(minimal(timestamp=None), f"{E0}.timestamp")
    assert "is required. Send the time of this value, e.g. '2019-09-10 13:09:23'." in message
    doc = minimal()
    doc["data"][0]["elements"][0]["timestamp"] = None
    assert "is required; got null." in only_error(doc, f"{E0}.timestamp")


def test_timestamp_in_milliseconds() -> None:
    message = only_error(minimal(timestamp=1568120963000), f"{E0}.timestamp")
    assert "got 1568120963000" in message
    assert "looks like milliseconds; divide by 1000" in message


def test_timestamp_forms() -> None:
    for value in (1568120963, "1568120963", "2019-09-10T13:09:23Z", "2019-09-10 13:09:23"):
        point = validate_batch(minimal(timestamp=value), tz=UTC_ZONE).points[0]
        assert point.timestamp == ARTICLE_EPOCH_UTC
        assert point.date_from is None
        assert point.date_to is None


def test_date_range_must_not_be_reversed() -> None:
    message = only_error(
        minimal(date_from="2019-09-10 13:09:24", date_to="2019-09-10 13:09:23"), f"{E0}.date_to"
    )
    assert "must not be before date_from" in message
    assert "'2019-09-10 13:09:23'" in message
    assert "swap them" in message


def test_date_range_equal_is_fine() -> None:
    point = validate_batch(minimal(date_from=5, date_to=5), tz=UTC_ZONE).points[0]
    assert (point.date_from, point.date_to) == (5, 5)


def test_bad_date_from_is_reported_once_and_no_range_error() -> None:
    errors = errors_of(minimal(date_from="soon", date_to=5))
    assert list(errors) == [f"{E0}.date_from"]
    assert "got 'soon'" in errors[f"{E0}.date_from"][0]


def test_aliases_are_accepted() -> None:
    point = validate_batch(
        minimal(data_from=10, data_to="1970-01-01 00:00:20"), tz=UTC_ZONE
    ).points[0]
    assert (point.date_from, point.date_to) == (10, 20)


def test_alias_with_the_same_instant_is_fine() -> None:
    point = validate_batch(
        minimal(date_from="2019-09-10 13:09:23", data_from=ARTICLE_EPOCH_UTC), tz=UTC_ZONE
    ).points[0]
    assert point.date_from == ARTICLE_EPOCH_UTC


def test_alias_conflict_is_reported_on_the_alias() -> None:
    message = only_error(minimal(date_to=20, data_to=30), f"{E0}.data_to")
    assert "conflicts with date_to: got 30 (epoch 30) but date_to is 20 (epoch 20)" in message
    assert "send only date_to" in message


def test_invalid_alias_is_reported_on_the_alias() -> None:
    message = only_error(minimal(data_from="tomorrow"), f"{E0}.data_from")
    assert "got 'tomorrow'" in message


def test_reversed_range_via_aliases_is_reported_on_the_alias_path() -> None:
    message = only_error(minimal(data_from=30, data_to=20), f"{E0}.data_to")
    assert "must not be before date_from" in message


def test_repeated_bad_timestamps_are_each_reported() -> None:
    doc = minimal(timestamp="nope")
    doc["data"][0]["elements"].append(dict(doc["data"][0]["elements"][0], id=2))
    assert list(errors_of(doc)) == [f"{E0}.timestamp", "data.0.elements.1.timestamp"]


# -- many errors ----------------------------------------------------------------------


def test_every_problem_is_reported_in_document_order() -> None:
    doc = article()
    doc["version"] = ""
    doc["data"][0]["elements"][0]["value"] = "1,5"
    doc["data"][0]["elements"][1]["timestamp"] = 1568120963000
    doc["data"][1]["user_id"] = True
    doc["data"][2]["elements"][0]["object_type"] = "text"
    doc["data"][2]["elements"][1]["id"] = 1
    with pytest.raises(ValidationFailed) as info:
        validate_batch(doc, tz=UTC_ZONE)
    errors = info.value.errors
    assert list(errors) == [
        "version",
        "data.0.elements.0.value",
        "data.0.elements.1.timestamp",
        "data.1.user_id",
        "data.2.elements.0.object_type",
        "data.2.elements.1.id",
    ]
    for path, messages in errors.items():
        assert messages[0].startswith(f"The {path} field ")
    assert info.value.message.endswith("(and 5 more errors)")


def test_one_element_with_many_problems() -> None:
    errors = errors_of(
        minimal(
            id=True, kpi="", object_type="n", units=1, timestamp="x", date_from="y", date_to="z"
        )
    )
    assert list(errors) == [
        f"{E0}.{key}"
        for key in ("id", "kpi", "object_type", "units", "timestamp", "date_from", "date_to")
    ]


def test_error_messages_truncate_long_values() -> None:
    message = only_error(minimal(value="9" * 10 + "," + "9" * 5000), f"{E0}.value")
    assert len(message) < 400


def test_max_elements_guard() -> None:
    doc = article()
    with pytest.raises(PayloadTooLarge) as info:
        validate_batch(doc, tz=UTC_ZONE, max_elements=5)
    assert info.value.limit == 5
    assert len(validate_batch(doc, tz=UTC_ZONE, max_elements=6).points) == 6


def test_input_is_not_modified() -> None:
    doc = article()
    before = copy.deepcopy(doc)
    validate_batch(doc, tz=CPH)
    assert doc == before


# -- fuzzing -----------------------------------------------------------------------------

_JSON = JSON_VALUES


def _maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, valid, _JSON)


_ELEMENT = st.fixed_dictionaries(
    {
        "id": _maybe(st.integers(0, 5) | st.sampled_from(["1", "2", "a"])),
        "kpi": _maybe(st.just("points")),
        "object_type": _maybe(st.just("number")),
        "value": _maybe(st.floats() | st.integers() | st.text(max_size=10)),
        "timestamp": _maybe(st.integers(-5, 10**14) | st.just("2019-09-10 13:09:23")),
    },
    optional={
        "units": _maybe(st.text(max_size=5)),
        "date_from": _maybe(st.integers(0, 10**9)),
        "date_to": _maybe(st.integers(0, 10**9)),
        "data_from": _maybe(st.integers(0, 10**9)),
        "data_to": _maybe(st.integers(0, 10**9)),
    },
)
_ENTRY = st.fixed_dictionaries(
    {"elements": _maybe(st.lists(_maybe(_ELEMENT), max_size=4))},
    optional={
        "user_id": _maybe(st.just("u") | st.integers()),
        "location_id": _maybe(st.just("l") | st.integers()),
    },
)
_BATCH = st.fixed_dictionaries(
    {
        "type": _maybe(st.just("t")),
        "version": _maybe(st.just("1")),
        "context": _maybe(st.just("c")),
        "data": _maybe(st.lists(_maybe(_ENTRY), max_size=3)),
    }
)


def _check(doc: object) -> None:
    try:
        batch = validate_batch(doc, tz=CPH)
    except ValidationFailed as exc:
        assert exc.errors
        for path, messages in exc.errors.items():
            assert messages
            for message in messages:
                subject = "The request body " if path == "body" else f"The {path} field "
                assert message.startswith(subject)
    else:
        assert batch.points


@given(_JSON)
def test_arbitrary_json_only_raises_validation_failed(doc: object) -> None:
    _check(doc)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(_BATCH)
def test_nearly_valid_batches_only_raise_validation_failed(doc: object) -> None:
    _check(doc)


# -- round trip: a batch built from known values validates back to those values ----------

_TEXTS = st.text(min_size=1, max_size=20)
_IDS = st.text(min_size=1, max_size=20) | st.integers(-(10**18), 10**18)
# A day inside 1970..9999: the year written in an offset time must be in that range too.
_EPOCHS = st.integers(86400, 253402300799 - 86400)


def _wire_time(epoch: int) -> st.SearchStrategy[object]:
    """The epoch in each wire form a client may use (UTC for 'Y-m-d H:i:s'); numbers only
    below MAX_EPOCH_SECONDS, above which they look like milliseconds."""
    moment = datetime.fromtimestamp(epoch, UTC)
    forms: list[object] = [
        moment.strftime("%Y-%m-%d %H:%M:%S"),
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.astimezone(timezone(timedelta(hours=-3, minutes=-30))).isoformat(),
    ]
    if epoch < MAX_EPOCH_SECONDS:
        forms += [epoch, str(epoch), float(epoch)]
    return st.sampled_from(forms)


@st.composite
def _elements(draw: st.DrawFn, element_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the element on the wire, the DataPoint fields it must become)."""
    value = draw(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**15), 10**15))
    wire_value = draw(st.sampled_from([value, repr(value) if type(value) is float else str(value)]))
    timestamp = draw(_EPOCHS)
    element: dict[str, Any] = {
        "id": draw(st.sampled_from([element_id, int(element_id)])),
        "kpi": draw(_TEXTS),
        "object_type": "number",
        "value": wire_value,
        "timestamp": draw(_wire_time(timestamp)),
    }
    expected: dict[str, Any] = {
        "element_id": element_id,
        "kpi": element["kpi"],
        "object_type": "number",
        "value": float(value),
        "units": None,
        "timestamp": timestamp,
        "date_from": None,
        "date_to": None,
    }
    if draw(st.booleans()):
        element["units"] = expected["units"] = draw(st.text(max_size=10))
    if draw(st.booleans()):
        start, end = sorted(draw(st.lists(_EPOCHS, min_size=2, max_size=2)))
        element["date_from"] = draw(_wire_time(start))
        element["date_to"] = draw(_wire_time(end))
        expected["date_from"], expected["date_to"] = start, end
    return element, expected


@st.composite
def _batches(draw: st.DrawFn) -> tuple[dict[str, Any], ParsedBatch]:
    doc: dict[str, Any] = {
        "type": draw(_TEXTS),
        "version": draw(st.text(min_size=1, max_size=64)),
        "context": draw(_TEXTS),
        "data": [],
    }
    points: list[DataPoint] = []
    next_id = 0
    for _ in range(draw(st.integers(1, 3))):
        owners = draw(st.sampled_from([("user_id",), ("location_id",), ("user_id", "location_id")]))
        entry: dict[str, Any] = {key: draw(_IDS) for key in owners}
        entry["elements"] = []
        for _ in range(draw(st.integers(1, 4))):
            element, expected = draw(_elements(str(next_id)))
            next_id += 1
            entry["elements"].append(element)
            user, location = (str(entry[k]) if k in entry else None for k in _OWNERS)
            points.append(DataPoint(**expected, user_id=user, location_id=location))
        doc["data"].append(entry)
    return doc, ParsedBatch(doc["type"], doc["version"], doc["context"], points)


_OWNERS = ("user_id", "location_id")


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(_batches())
def test_valid_batches_round_trip(case: tuple[dict[str, Any], ParsedBatch]) -> None:
    doc, expected = case
    assert validate_batch(doc, tz=UTC_ZONE) == expected
    # What a client's JSON encoder produces decodes and validates to the same batch.
    assert validate_batch(json.loads(json.dumps(doc)), tz=UTC_ZONE) == expected
