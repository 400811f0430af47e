"""The bulk flow's input: rows from a list or a CSV/JSON/JSONL file, streamed and validated.

Validation covers the whole input before anything is written, and every error names the
row and the field: undecodable lines, repeated headers, short rows, bad JSON, non-finite
numbers, blank keys, and rows that give one group's property two different values.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from prefect_posthog.client import InvalidInputError
from prefect_posthog.flows.models import GroupPropertyUpdate


class Row(BaseModel):
    """One input row with its 1-based position."""

    row: int
    update: GroupPropertyUpdate


_ID_COLUMNS = ("group_type_index", "group_key", "$unset")


def _check_utf8(path: Path) -> None:
    """Name the first line that is not UTF-8 (a BOM is fine), before any row is parsed."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInputError("source_path", f"{path.name} line {number} is not "
                                        f"UTF-8 (byte {exc.start + 1} of the line); save the "
                                        "file as UTF-8") from None


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    # utf-8-sig: a spreadsheet's byte-order mark would otherwise glue onto the first header.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise InvalidInputError("source_path", f"{path.name}: column {repeated[0]!r} "
                                    "appears more than once in the header")
        missing = [c for c in _ID_COLUMNS[:2] if c not in header]
        if header and missing:
            raise InvalidInputError("source_path", f"{path.name}: the header has no "
                                    f"{missing[0]!r} column")
        index = 0
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            index += 1
            if len(cells) != len(header):
                raise InvalidInputError(f"row {index}", f"has {len(cells)} cells but the header "
                                        f"has {len(header)} (file line {reader.line_num})")
            record = dict(zip(header, cells, strict=True))
            sets = {k: v for k, v in record.items() if k not in _ID_COLUMNS and v != ""}
            unset = [n.strip() for n in record.get("$unset", "").split(";") if n.strip()]
            yield {"group_type_index": record["group_type_index"],
                   "group_key": record["group_key"], "set": sets, "unset": unset}


def _raw_rows(path: Path) -> Iterator[Any]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_rows(path)
    elif suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8-sig") as handle:
            index = 0
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                index += 1
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"row {index}", f"file line {number} is not valid "
                                            f"JSON ({exc.msg} at column {exc.colno})") from None
    elif suffix == ".json":
        with path.open(encoding="utf-8-sig") as handle:
            try:
                rows = json.load(handle)
            except json.JSONDecodeError as exc:
                raise InvalidInputError("source_path", f"{path.name} is not valid JSON "
                                        f"({exc.msg} at line {exc.lineno} column "
                                        f"{exc.colno})") from None
        if not isinstance(rows, list):
            raise InvalidInputError("source_path", f"{path.name} must hold a JSON array of "
                                    "rows")
        yield from rows
    else:
        raise InvalidInputError("source_path", f"{path.name}: use a .csv, .json or .jsonl file")


def _parse(raw: Any, row: int) -> Row:
    try:
        return Row(row=row, update=GroupPropertyUpdate.model_validate(raw))
    except PydanticValidationError as exc:
        first = exc.errors(include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(f"row {row}: {where}" if where else f"row {row}",
                                first["msg"].removeprefix("Value error, ")) from None


def read_rows(updates: Iterable[Any] | None, source_path: str | None) -> Iterator[Row]:
    """Stream the input rows, validated, from the parameter or from a file."""
    if (updates is None) == (source_path is None):
        raise InvalidInputError("updates", "give exactly one of updates or source_path")
    if source_path is not None:
        path = Path(source_path)
        if not path.is_file():
            raise InvalidInputError("source_path", f"{source_path} is not a readable file")
        source: Iterable[Any] = _raw_rows(path)
    else:
        source = updates or []
    for index, raw in enumerate(source, start=1):
        yield _parse(raw, index)


class InputSummary(NamedTuple):
    """What validation learnt about the input."""

    rows: int
    max_writes: int  # every property set or unset counted: an upper bound of API writes


def validate_input(updates: list[Any] | None, source_path: str | None) -> InputSummary:
    """Check every row before anything is written; return the row count and an upper bound
    of the writes it needs.

    Rows for the same group are allowed when they agree; two rows giving one property of
    one group different values (or setting and removing it) are refused, since any order
    of applying them would rewrite the property on every run.

    Raises:
        InvalidInputError: Naming the row and the field of the first bad row.
    """
    if source_path is not None and Path(source_path).is_file():
        _check_utf8(Path(source_path))
    count = max_writes = 0
    seen: set[int] = set()
    repeated: set[int] = set()  # hashes only: a 100k-row input stays small in memory
    try:
        for row in read_rows(updates, source_path):
            count += 1
            max_writes += len(row.update.set) + len(row.update.unset)
            ident = hash((row.update.group_type_index, row.update.group_key))
            (repeated if ident in seen else seen).add(ident)
    except csv.Error as exc:
        raise InvalidInputError(f"row {count + 1}", f"is not valid CSV ({exc})") from None
    if repeated:
        _refuse_conflicts(read_rows(updates, source_path), repeated)
    return InputSummary(count, max_writes)


def _refuse_conflicts(rows: Iterator[Row], repeated: set[int]) -> None:
    wanted: dict[tuple[int, str], dict[str, tuple[str, int]]] = {}
    for row in rows:
        u = row.update
        if hash((u.group_type_index, u.group_key)) not in repeated:
            continue
        props = wanted.setdefault((u.group_type_index, u.group_key), {})
        for name, value in [*((k, json.dumps(v, sort_keys=True)) for k, v in u.set.items()),
                            *((k, "<unset>") for k in u.unset)]:
            earlier = props.get(name)
            if earlier is not None and earlier[0] != value:
                raise InvalidInputError(
                    f"row {row.row}: {'unset' if value == '<unset>' else 'set'}.{name}",
                    f"conflicts with row {earlier[1]}, which gives group {u.group_key!r} "
                    f"another value for {name!r}; merge the two rows")
            props[name] = (value, row.row)


def chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
