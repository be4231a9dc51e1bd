"""Reading a push's input: the article's JSON body, NDJSON, or CSV.

- JSON: the article's body, ``{"type", "version", "context", "data": [...]}``.
- NDJSON (``.ndjson``, ``.jsonl``): one object a line, either an element with its
  ``user_id`` / ``location_id`` beside the element's fields, or a whole ``data``
  entry (``{"user_id", "location_id", "elements": [...]}``).
- CSV: a header naming ``user_id,location_id,id,kpi,value,units,timestamp,date_from,
  date_to`` (``object_type`` optional, default ``number``); empty cells are absent.

Problems of the file itself (not JSON, a missing column) are collected, each
with its line, rather than stopping at the first.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from kpihub.client._batching import Row, rows_of
from kpihub.client._validation import validate

__all__ = ["CSV_COLUMNS", "Input", "read_input"]

CSV_COLUMNS: Final = (
    "user_id",
    "location_id",
    "id",
    "kpi",
    "value",
    "units",
    "timestamp",
    "date_from",
    "date_to",
)
_CSV_REQUIRED: Final = ("id", "kpi", "value", "timestamp")
_CSV_ELEMENT: Final = (
    "id",
    "kpi",
    "object_type",
    "value",
    "units",
    "timestamp",
    "date_from",
    "date_to",
)
HEADER_FIELDS: Final = ("type", "version", "context")


@dataclass
class Input:
    """What a file holds: header fields it carries, its rows, and what is wrong with it."""

    format: str
    header: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "json"
    with path.open("rb") as fh:
        start = fh.read(4096).lstrip()
    if start.startswith((b"{", b"[")):
        return "json"
    return "csv"


def read_input(path: Path, format: str | None = None, *, timezone: str = "UTC") -> Input:
    kind = format or detect_format(path)
    if kind == "json":
        return _read_json(path, timezone)
    if kind == "ndjson":
        return _read_ndjson(path)
    if kind == "csv":
        return _read_csv(path)
    raise ValueError(f"unknown input format {kind!r}; use json, ndjson or csv")


def _read_json(path: Path, timezone: str) -> Input:
    found = Input("json")
    try:
        doc = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        found.problems.append(f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}).")
        return found
    except UnicodeDecodeError as exc:
        found.problems.append(f"the file is not UTF-8 ({exc.reason}).")
        return found
    if not isinstance(doc, dict):
        found.problems.append(
            "the file must hold one JSON object: the article's body with type, version, "
            "context and data."
        )
        return found
    found.header = {k: doc[k] for k in HEADER_FIELDS if k in doc}
    # Checked whole, as the server would check this very body; header fields may
    # still come from the command line, so their errors are left to the caller.
    probe = {**{k: "x" for k in HEADER_FIELDS}, **doc}
    errors = validate(probe, timezone=timezone)
    structural = {k: v for k, v in errors.items() if k not in HEADER_FIELDS}
    if structural:
        found.problems.extend(m for messages in structural.values() for m in messages)
        return found
    found.rows = list(rows_of(doc["data"]))
    return found


def _read_ndjson(path: Path) -> Input:
    found = Input("ndjson")
    with path.open(encoding="utf-8", errors="strict") as fh:
        try:
            lines = list(fh)
        except UnicodeDecodeError as exc:
            found.problems.append(f"the file is not UTF-8 ({exc.reason}).")
            return found
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            found.problems.append(f"line {n}, column {exc.colno}: not valid JSON ({exc.msg}).")
            continue
        if not isinstance(obj, dict):
            found.problems.append(f"line {n}: must be a JSON object (an element or a data entry).")
            continue
        user_id, location_id = obj.pop("user_id", None), obj.pop("location_id", None)
        elements = obj.get("elements")
        if "elements" not in obj:
            found.rows.append(Row(obj, user_id, location_id, f"line {n}"))
        elif isinstance(elements, list) and all(isinstance(e, dict) for e in elements):
            found.rows.extend(
                Row(e, user_id, location_id, f"line {n}, element {j}", group=("line", n))
                for j, e in enumerate(elements)
            )
        else:
            found.problems.append(f"line {n}: elements must be an array of objects.")
    return found


def _read_csv(path: Path) -> Input:
    found = Input("csv")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or ()]
        missing = [c for c in _CSV_REQUIRED if c not in columns]
        if missing or not {"user_id", "location_id"} & set(columns):
            need = missing + ([] if {"user_id", "location_id"} & set(columns) else ["user_id"])
            found.problems.append(
                f"line 1: the header lacks {', '.join(need)}; expected the columns "
                f"{','.join(CSV_COLUMNS)} (object_type optional)."
            )
            return found
        reader.fieldnames = columns
        try:
            for record in reader:
                element: dict[str, Any] = {"object_type": "number"}
                for name in _CSV_ELEMENT:
                    value = record.get(name)
                    if value not in (None, ""):
                        element[name] = value
                found.rows.append(
                    Row(
                        element,
                        record.get("user_id") or None,
                        record.get("location_id") or None,
                        f"line {reader.line_num}",
                    )
                )
        except (csv.Error, UnicodeDecodeError) as exc:
            found.problems.append(f"line {reader.line_num}: {exc}.")
    return found
