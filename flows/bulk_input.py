"""The bulk flow's input: rows from a list, a DataFrame or Arrow table, or a CSV, JSON,
JSONL or Parquet file — local or at any fsspec URL — streamed and validated.

Validation covers the whole input before anything is written, and every error names the
row and the field (or the column): undecodable lines, repeated headers, short rows, bad
JSON, non-finite numbers, blank keys, columns of the wrong type, nested values where a
scalar belongs, and rows that give one group's property two different values (checked
once all rows are stored, `bulk_store`). Missing optional packages are named, with the
extra to install, before anything is read.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from pydantic import ValidationError as PydanticValidationError

from prefect_posthog.client import SECRETS, InvalidInputError
from prefect_posthog.flows import bulk_frames
from prefect_posthog.flows.bulk_models import GroupPropertyUpdate
from prefect_posthog.flows.bulk_store import BulkStore, InputSummary

ID_COLUMNS = ("group_type_index", "group_key", "$unset", "$set_null")
SUFFIXES = (".csv", ".json", ".jsonl", ".ndjson", ".parquet")
# fsspec protocols whose file system lives in an optional package, and the extra with it.
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
           "abfss": "azure", "adl": "azure"}


def names(cell: str) -> list[str]:
    """A `$unset`/`$set_null` cell: property names separated by `;`."""
    return [n.strip() for n in cell.split(";") if n.strip()]


def _lines(handle: IO[bytes], name: str) -> Iterator[tuple[int, str]]:
    """Numbered text lines; the first line that is not UTF-8 is named (a BOM is fine)."""
    for number, raw in enumerate(handle, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError("source_path", f"{name} line {number} is not UTF-8 "
                                    f"(byte {exc.start + 1} of the line); save the file as "
                                    "UTF-8") from None
        yield number, text.removeprefix("\ufeff") if number == 1 else text


def _csv_rows(handle: IO[bytes], name: str) -> Iterator[dict[str, Any]]:
    # The BOM is dropped by `_lines`: a spreadsheet's would otherwise glue onto the header.
    reader = csv.reader(text for _, text in _lines(handle, name))
    header = [h.strip() for h in next(reader, [])]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InvalidInputError("source_path", f"{name}: column {repeated[0]!r} appears more "
                                "than once in the header")
    missing = [c for c in ID_COLUMNS[:2] if c not in header]
    if header and missing:
        raise InvalidInputError("source_path", f"{name}: the header has no {missing[0]!r} "
                                "column")
    index = 0
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        index += 1
        if len(cells) != len(header):
            raise InvalidInputError(f"row {index}", f"has {len(cells)} cells but the header "
                                    f"has {len(header)} (file line {reader.line_num})")
        record = dict(zip(header, cells, strict=True))
        sets = {k: v for k, v in record.items() if k not in ID_COLUMNS and v != ""}
        yield {"group_type_index": record["group_type_index"], "group_key": record["group_key"],
               "set": sets, "unset": names(record.get("$unset", "")),
               "set_null": names(record.get("$set_null", ""))}


def _jsonl_rows(handle: IO[bytes], name: str) -> Iterator[Any]:
    index = 0
    for number, line in _lines(handle, name):
        if not line.strip():
            continue
        index += 1
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"row {index}", f"file line {number} is not valid JSON "
                                    f"({exc.msg} at column {exc.colno})") from None


def _json_rows(handle: IO[bytes], name: str) -> Iterator[Any]:
    text = "".join(line for _, line in _lines(handle, name))
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError("source_path", f"{name} is not valid JSON ({exc.msg} at line "
                                f"{exc.lineno} column {exc.colno})") from None
    if not isinstance(rows, list):
        raise InvalidInputError("source_path", f"{name} must hold a JSON array of rows")
    yield from rows


def _shown_url(source: str) -> str:
    """The path as errors show it: never a password written into the URL."""
    parts = urlsplit(source)
    if parts.password or parts.username:
        source = source.replace(parts.netloc, parts.hostname or "", 1)
    return SECRETS.redact(source) or ""


def check_source(source_path: str) -> None:
    """Refuse what cannot be read before reading anything: the suffix, and a missing
    optional package (naming the extra to install)."""
    suffix = Path(urlsplit(source_path).path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInputError("source_path", f"{Path(source_path).name}: use a .csv, .json, "
                                ".jsonl or .parquet file")
    if suffix == ".parquet":
        bulk_frames.require_pyarrow("source_path")
    protocol = source_path.split("://", 1)[0].lower() if "://" in source_path else ""
    if protocol and protocol != "file":
        import fsspec

        try:
            fsspec.get_filesystem_class(protocol)
        except ImportError:
            extra = _EXTRAS.get(protocol)
            hint = (f"pip install 'prefect-posthog[{extra}]'" if extra
                    else "install the fsspec file system for it")
            raise InvalidInputError("source_path", f"reading {protocol}:// URLs needs a "
                                    f"package that is not installed: {hint}") from None
        except ValueError:
            raise InvalidInputError("source_path", f"{protocol}:// is not a file system fsspec "
                                    "knows; use a local path or e.g. s3://, gs://, az://"
                                    ) from None


def _open(stack: ExitStack, source_path: str) -> IO[bytes]:
    """The file, binary: local, or through fsspec with the file system's usual
    credentials (environment variables, instance profiles, config files)."""
    shown = _shown_url(source_path)
    if "://" not in source_path:
        path = Path(source_path)
        if not path.is_file():
            raise InvalidInputError("source_path", f"{shown} is not a readable file")
        return stack.enter_context(path.open("rb"))
    import fsspec

    try:
        return stack.enter_context(fsspec.open(source_path, "rb"))
    except FileNotFoundError:
        raise InvalidInputError("source_path", f"{shown} does not exist") from None
    except Exception as exc:  # any file system's refusal: credentials, bucket, network
        text = SECRETS.redact(str(exc)) or ""
        raise InvalidInputError("source_path", f"cannot read {shown}: {type(exc).__name__}: "
                                f"{text[:300]}") from None


def _file_rows(stack: ExitStack, source_path: str) -> Iterator[Any]:
    handle = _open(stack, source_path)
    name = Path(urlsplit(source_path).path).name
    suffix = Path(name).suffix.lower()
    if suffix == ".parquet":
        return bulk_frames.parquet_rows(handle, name)
    if suffix == ".csv":
        return _csv_rows(handle, name)
    return _jsonl_rows(handle, name) if suffix in (".jsonl", ".ndjson") else _json_rows(
        handle, name)


def parse(raw: Any, row: int) -> GroupPropertyUpdate:
    """One raw row validated, or `InvalidInputError` naming the row and the field."""
    if isinstance(raw, GroupPropertyUpdate):
        return raw
    try:
        return GroupPropertyUpdate.model_validate(raw)
    except PydanticValidationError as exc:
        first = exc.errors(include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(f"row {row}: {where}" if where else f"row {row}",
                                first["msg"].removeprefix("Value error, ")) from None


def read_rows(updates: Any, source_path: str | None
              ) -> Iterator[tuple[int, GroupPropertyUpdate]]:
    """Stream the input rows, validated and numbered from 1, from the parameter or a file."""
    if (updates is None) == (source_path is None):
        raise InvalidInputError("updates", "give exactly one of updates or source_path")
    with ExitStack() as stack:
        if source_path is not None:
            check_source(source_path)
            source: Iterable[Any] = _file_rows(stack, source_path)
        elif bulk_frames.is_tabular(updates):
            source = bulk_frames.frame_rows(updates)
        else:
            source = updates
        index = 0
        try:
            for index, raw in enumerate(source, start=1):
                yield index, parse(raw, index)
        except csv.Error as exc:
            raise InvalidInputError(f"row {index + 1}", f"is not valid CSV ({exc})") from None


def spill_input(store: BulkStore, updates: Any, source_path: str | None) -> InputSummary:
    """Validate the whole input into the run's store; return what it holds.

    Raises:
        InvalidInputError: Naming the row and the field of the first bad row, or the
            input itself (a missing column, an unreadable file, a missing extra).
    """
    for index, update in read_rows(updates, source_path):
        store.add(index, update)
    return store.close_input()
