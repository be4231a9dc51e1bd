"""Validation of a decoded KPI batch body into a :class:`~kpihub.domain.ParsedBatch`.

Pure: no I/O, no clock, no registry of integrations (whether ``type`` is
registered for the tenant is checked by the caller). Every problem in the
body is collected, keyed by its dotted path in document order, and raised at
once as :class:`~kpihub.errors.ValidationFailed`.

This runs once per element of every accepted batch, so the happy path does
its checks inline and only the error path builds paths and messages.
"""

from __future__ import annotations

from typing import Any, Final
from zoneinfo import ZoneInfo

from kpihub.domain import DataPoint, ParsedBatch
from kpihub.errors import PayloadTooLarge, ValidationFailed
from kpihub.ingest import InvalidValue, described, show
from kpihub.ingest.objecttypes import REGISTRY
from kpihub.ingest.times import MAX_EPOCH_SECONDS, parse_time

__all__ = ["MAX_TEXT", "MAX_VERSION", "validate_batch"]

MAX_TEXT: Final = 255
MAX_VERSION: Final = 64
# abs(n) below this has at most 254 digits, so str(n) fits MAX_TEXT with a sign;
# the bound also keeps int -> str away from its 4300-digit ValueError.
_INT_ID_BOUND: Final = 10**254

_BODY_KEY: Final = "body"
_HINTS: Final = {
    "type": "Send the integration identifier registered for your tenant, e.g. 'my_pos_sync'.",
    "version": "Send the version of your integration as a string, e.g. '1.0.0'.",
    "context": "Send the context that groups these KPIs, e.g. 'sales'.",
    "data": "Send an array of objects with user_id and/or location_id and elements.",
    "entry": "Send an object with user_id and/or location_id and elements.",
    "user_id": "Send the user's id in your system as a string or integer, e.g. '123'.",
    "location_id": "Send the location's id in your system as a string or integer, e.g. '321'.",
    "elements": "Send a non-empty array of elements, each with id, kpi, object_type, "
    "value and timestamp.",
    "element": "Send an object with id, kpi, object_type, value and timestamp.",
    "id": "Send this element's id in your system as a string or integer, e.g. 1; "
    "it must be unique within the batch.",
    "kpi": "Send the KPI identifier, e.g. 'device_sales'.",
    "units": "Send a short label such as 'Eur' or '%', or leave units out.",
}
_DATE_ALIASES: Final = (("date_from", "data_from"), ("date_to", "data_to"))


def validate_batch(
    doc: object,
    *,
    tz: ZoneInfo,
    max_elements: int = 10_000,
    now: float | None = None,
) -> ParsedBatch:
    """The batch in ``doc`` (decoded JSON), or :class:`ValidationFailed` listing every problem.

    ``tz`` is the tenant's time zone, used for ``"Y-m-d H:i:s"`` times.
    The caller is expected to have enforced ``max_elements`` already (413);
    it is checked again here, as data entries are walked, so that this
    function is safe to call on its own: :class:`PayloadTooLarge` is raised
    as soon as the running count passes it. ``now`` is accepted for a stable
    signature but not used: times in the future are legitimate (targets,
    budgets), so there is no "too far ahead" rule.
    """
    del now
    if type(doc) is not dict:
        raise ValidationFailed(
            {
                _BODY_KEY: [
                    "The request body must be a JSON object with type, version, context "
                    f"and data; got {described(doc)}."
                ]
            }
        )
    errors: dict[str, list[str]] = {}
    batch_type = _required_text(doc, "type", MAX_TEXT, errors)
    version = _version(doc, errors)
    context = _required_text(doc, "context", MAX_TEXT, errors)
    data = doc.get("data")
    points: list[DataPoint] = []
    if type(data) is not list or not data:
        _add(errors, "data", _container_problem(data, "data" in doc, "an array", "data"))
    else:
        _walk_data(data, tz, max_elements, points, errors)
    if errors:
        raise ValidationFailed(errors)
    return ParsedBatch(type=batch_type, version=version, context=context, points=points)


def _walk_data(
    data: list[Any],
    tz: ZoneInfo,
    max_elements: int,
    points: list[DataPoint],
    errors: dict[str, list[str]],
) -> None:
    registry = REGISTRY
    append = points.append
    seen: dict[str, tuple[int, int]] = {}
    # parse_time memoises across batches; this per-batch dict is cheaper still
    # for the common case of one timestamp repeated over a whole batch.
    times: dict[str, int] = {}
    count = 0
    for i, entry in enumerate(data):
        if type(entry) is not dict:
            _add(
                errors,
                f"data.{i}",
                f"must be an object; got {described(entry)}. " + _HINTS["entry"],
            )
            continue
        user_id = _owner_id(entry, "user_id", i, errors)
        location_id = _owner_id(entry, "location_id", i, errors)
        if entry.get("user_id") is None and entry.get("location_id") is None:
            _add(
                errors,
                f"data.{i}.user_id",
                f"is required when data.{i}.location_id is not present. Send user_id, "
                "location_id or both, as a string or integer (e.g. 'user_id': '123').",
            )
        elements = entry.get("elements")
        if type(elements) is not list or not elements:
            _add(
                errors,
                f"data.{i}.elements",
                _container_problem(elements, "elements" in entry, "an array", "elements"),
            )
            continue
        count += len(elements)
        if count > max_elements:
            raise PayloadTooLarge(
                f"The batch has more than {max_elements} elements. Split it into requests "
                f"of at most {max_elements} elements.",
                limit=max_elements,
            )
        for j, el in enumerate(elements):
            if type(el) is not dict:
                _add(
                    errors,
                    f"data.{i}.elements.{j}",
                    f"must be an object; got {described(el)}. " + _HINTS["element"],
                )
                continue
            get = el.get

            raw = get("id")
            if type(raw) is str and 0 < len(raw) <= MAX_TEXT:
                element_id = raw
            elif type(raw) is int and -_INT_ID_BOUND < raw < _INT_ID_BOUND:
                element_id = str(raw)
            else:
                element_id = ""
                _add(
                    errors,
                    f"data.{i}.elements.{j}.id",
                    _text_problem(raw, "id" in el, MAX_TEXT, "id", ints=True),
                )
            if element_id:
                first = seen.get(element_id)
                if first is None:
                    seen[element_id] = (i, j)
                else:
                    _add(
                        errors,
                        f"data.{i}.elements.{j}.id",
                        f"has the duplicate value {show(raw)}; data.{first[0]}.elements."
                        f"{first[1]}.id already uses it (ids 1 and '1' are the same). Give "
                        "every element of a batch its own id.",
                    )

            kpi = get("kpi")
            if type(kpi) is not str or not 0 < len(kpi) <= MAX_TEXT:
                _add(
                    errors,
                    f"data.{i}.elements.{j}.kpi",
                    _text_problem(kpi, "kpi" in el, MAX_TEXT, "kpi"),
                )
                kpi = ""

            object_type = get("object_type")
            kind = registry.get(object_type) if type(object_type) is str else None
            value = 0.0
            type_name = ""
            if kind is None:
                _add(
                    errors,
                    f"data.{i}.elements.{j}.object_type",
                    _object_type_problem(object_type, "object_type" in el),
                )
            else:
                type_name = kind.name
                raw = get("value")
                try:
                    value = kind.parse(raw)
                except InvalidValue as exc:
                    _add(
                        errors,
                        f"data.{i}.elements.{j}.value",
                        str(exc)
                        if "value" in el
                        else f"is required. Send the KPI's value for object_type '{object_type}'.",
                    )

            units = get("units")
            if units is not None and (type(units) is not str or len(units) > MAX_TEXT):
                _add(
                    errors,
                    f"data.{i}.elements.{j}.units",
                    _text_problem(units, True, MAX_TEXT, "units", empty_ok=True),
                )
                units = None

            raw = get("timestamp")
            if type(raw) is str:
                timestamp = times.get(raw, -1)
            elif type(raw) is int and 0 <= raw < MAX_EPOCH_SECONDS:
                timestamp = raw
            else:
                timestamp = -1
            if timestamp < 0:
                if raw is None:
                    _add(
                        errors,
                        f"data.{i}.elements.{j}.timestamp",
                        ("is required; got null. " if "timestamp" in el else "is required. ")
                        + "Send the time of this value, e.g. '2019-09-10 13:09:23'.",
                    )
                else:
                    timestamp = _time(raw, tz, times, f"data.{i}.elements.{j}.timestamp", errors)

            # Inline fast path: an already-seen string or a plain epoch, and no
            # alias spelling; anything else goes through _optional_time.
            raw = get("date_from")
            if type(raw) is str:
                date_from = times.get(raw)
            elif type(raw) is int and 0 <= raw < MAX_EPOCH_SECONDS:
                date_from = raw
            else:
                date_from = None
            if (date_from is None and raw is not None) or "data_from" in el:
                date_from = _optional_time(el, 0, i, j, tz, times, errors)
            raw = get("date_to")
            if type(raw) is str:
                date_to = times.get(raw)
            elif type(raw) is int and 0 <= raw < MAX_EPOCH_SECONDS:
                date_to = raw
            else:
                date_to = None
            if (date_to is None and raw is not None) or "data_to" in el:
                date_to = _optional_time(el, 1, i, j, tz, times, errors)
            if date_from is not None and date_to is not None and date_from > date_to:
                key = "date_to" if el.get("date_to") is not None else "data_to"
                shown = show(el.get(key))
                _add(
                    errors,
                    f"data.{i}.elements.{j}.{key}",
                    f"must not be before date_from; got {shown} (epoch {date_to}), which is "
                    f"before date_from (epoch {date_from}). Send date_from <= date_to; "
                    "swap them if they are reversed.",
                )

            if not errors:
                append(
                    DataPoint(
                        element_id,
                        kpi,
                        type_name,
                        value,
                        units,
                        timestamp,
                        date_from,
                        date_to,
                        user_id,
                        location_id,
                    )
                )


def _time(
    raw: object, tz: ZoneInfo, times: dict[str, int], path: str, errors: dict[str, list[str]]
) -> int:
    """Epoch seconds for ``raw``, or -1 after recording the problem at ``path``."""
    try:
        result = parse_time(raw, tz)
    except InvalidValue as exc:
        _add(errors, path, str(exc))
        return -1
    if type(raw) is str:
        times[raw] = result
    return result


def _optional_time(
    el: dict[str, Any],
    which: int,
    i: int,
    j: int,
    tz: ZoneInfo,
    times: dict[str, int],
    errors: dict[str, list[str]],
) -> int | None:
    """``date_from`` (which=0) or ``date_to`` (1), honouring the article's aliases.

    None when absent or invalid (the problem is recorded).
    """
    key, alias = _DATE_ALIASES[which]
    raw = el.get(key)
    result: int | None = None
    if raw is not None:
        result = times.get(raw, -1) if type(raw) is str else -1
        if result < 0:
            result = _time(raw, tz, times, f"data.{i}.elements.{j}.{key}", errors)
            if result < 0:
                result = None
    other = el.get(alias)
    if other is None:
        return result
    path = f"data.{i}.elements.{j}.{alias}"
    alias_result = _time(other, tz, times, path, errors)
    if alias_result < 0:
        return result
    if raw is None:
        return alias_result
    if result is not None and result != alias_result:
        _add(
            errors,
            path,
            f"conflicts with {key}: got {show(other)} (epoch {alias_result}) but {key} is "
            f"{show(raw)} (epoch {result}). {alias} is an alias of {key}; send only {key}.",
        )
    return result


def _add(errors: dict[str, list[str]], path: str, fragment: str) -> None:
    message = f"The {path} field {fragment}"
    found = errors.get(path)
    if found is None:
        errors[path] = [message]
    else:
        found.append(message)


def _required_text(doc: dict[str, Any], key: str, limit: int, errors: dict[str, list[str]]) -> str:
    value = doc.get(key)
    if type(value) is str and 0 < len(value) <= limit:
        return value
    _add(errors, key, _text_problem(value, key in doc, limit, key))
    return ""


def _version(doc: dict[str, Any], errors: dict[str, list[str]]) -> str:
    value = doc.get("version")
    if type(value) is str:
        if 0 < len(value) <= MAX_VERSION:
            return value
    elif type(value) is int:
        if -_INT_ID_BOUND < value < _INT_ID_BOUND and len(str(value)) <= MAX_VERSION:
            return str(value)
    elif type(value) is float and value - value == 0.0:
        # A JSON number has lost trailing zeros by now (1.10 -> '1.1'); the
        # docs tell integrators to send a string.
        return repr(value)
    _add(
        errors,
        "version",
        _text_problem(value, "version" in doc, MAX_VERSION, "version", ints=True, floats=True),
    )
    return ""


def _owner_id(entry: dict[str, Any], key: str, i: int, errors: dict[str, list[str]]) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if type(value) is str and 0 < len(value) <= MAX_TEXT:
        return value
    if type(value) is int and -_INT_ID_BOUND < value < _INT_ID_BOUND:
        return str(value)
    _add(errors, f"data.{i}.{key}", _text_problem(value, True, MAX_TEXT, key, ints=True))
    return None


def _text_problem(
    value: object,
    present: bool,
    limit: int,
    hint: str,
    *,
    ints: bool = False,
    floats: bool = False,
    empty_ok: bool = False,
) -> str:
    fix = _HINTS[hint]
    if value is None:
        return f"is required; got null. {fix}" if present else f"is required. {fix}"
    if type(value) is str:
        if not value and not empty_ok:
            return f"must not be empty. {fix}"
        return (
            f"must be at most {limit} characters; got {len(value)} characters "
            f"({show(value)}). Shorten it."
        )
    if type(value) is int and ints:
        return f"must be at most {limit} characters; got an integer of {limit}+ digits. {fix}"
    wanted = "a string"
    if ints:
        wanted = "a string or a number" if floats else "a string or an integer"
    got = described(value)
    if type(value) is float and ints and not floats and value.is_integer():
        return f"must be {wanted}; got {got}. Send it without a fraction, e.g. {int(value)}."
    return f"must be {wanted}; got {got}. {fix}"


def _container_problem(value: object, present: bool, wanted: str, hint: str) -> str:
    fix = _HINTS[hint]
    if value is None:
        return f"is required; got null. {fix}" if present else f"is required. {fix}"
    if isinstance(value, list):
        return f"must not be empty. {fix}"
    return f"must be {wanted}; got {described(value)}. {fix}"


def _object_type_problem(value: object, present: bool) -> str:
    known = ", ".join(f"'{name}'" for name in REGISTRY)
    if value is None:
        head = "is required; got null." if present else "is required."
    elif type(value) is str:
        head = f"must be a registered object type; got {show(value)}."
        lowered = value.strip().lower()
        if lowered in REGISTRY:
            return f"{head} Object types are lower case without spaces; send '{lowered}'."
    else:
        head = f"must be a string naming an object type; got {described(value)}."
    return f"{head} Registered object types: {known}."
