"""Tabular input through Arrow: pandas, polars and pyarrow objects (anything speaking the
Arrow PyCapsule stream interface, ``__arrow_c_stream__``) and Parquet files, read a record
batch at a time with the CSV's column convention.

Columns: ``group_type_index`` (integers 0-4), ``group_key`` (text or integers),
optional ``$unset`` and ``$set_null`` (names separated by ``;``, or lists of names), and one
column per property. A null cell means "no change", not "set to null" — a DataFrame's
missing values are nulls — so an explicit null is asked for by name in ``$set_null``.
Column types are checked from the schema before any row is read; a property column must
hold scalars (nested values belong in a JSON or JSONL file's ``set``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from typing import IO, Any

from prefect_posthog.client import InvalidInputError

BATCH_ROWS = 10_000  # rows per Arrow record batch read
PARQUET_EXTRA = "pip install 'prefect-posthog[parquet]'"


def require_pyarrow(field: str) -> Any:
    """The `pyarrow` module, or an error naming the extra that installs it."""
    try:
        import pyarrow
    except ImportError:
        raise InvalidInputError(field, f"reading Parquet files, DataFrames and Arrow tables "
                                f"needs pyarrow, which is not installed: {PARQUET_EXTRA}"
                                ) from None
    return pyarrow


def is_tabular(value: Any) -> bool:
    """Whether `value` is a table to read through Arrow (not a list of rows)."""
    return hasattr(value, "__arrow_c_stream__") or type(value).__name__ == "RecordBatchReader"


def describe(value: Any) -> str:
    """A table as a flow-run parameter shows it: its type and size, never its rows."""
    kind = f"{type(value).__module__.split('.')[0]}.{type(value).__name__}"
    try:
        return f"<{kind} of {len(value)} rows, read in memory; not stored as a parameter>"
    except TypeError:
        return f"<{kind}, read in memory; not stored as a parameter>"


_SPECIAL = ("group_type_index", "group_key", "$unset", "$set_null")


def _column_problem(name: str, kind: Any) -> str | None:
    """What is wrong with a column of this Arrow type, if anything."""
    import pyarrow.types as t

    if t.is_dictionary(kind):  # pandas categoricals, polars enums
        kind = kind.value_type
    if name == "group_type_index" and not (t.is_integer(kind) or t.is_null(kind)):
        hint = (" (a pandas column with missing values becomes float: fill them or use the "
                "Int64 dtype)" if t.is_floating(kind) else "")
        return f"has type {kind}; it must hold integers 0-4{hint}"
    if name == "group_key" and not (_is_text(kind) or t.is_integer(kind)):
        return f"has type {kind}; it must hold text (or integers)"
    names = t.is_list(kind) or t.is_large_list(kind)
    if name in ("$unset", "$set_null") and not (
            _is_text(kind) or t.is_null(kind) or (names and _is_text(kind.value_type))):
        return f"has type {kind}; it must hold property names separated by ';', or lists of names"
    if name not in _SPECIAL and not _is_scalar(kind):
        return (f"has type {kind}; property columns must hold scalars (text, numbers, "
                "booleans, dates or times); put nested values in a JSON or JSONL file's set")
    return None


def _check_schema(schema: Any, field: str, label: str) -> list[str]:
    """The property columns, after checking every column's type."""
    for name in ("group_type_index", "group_key"):
        if name not in schema.names:
            raise InvalidInputError(field, f"{label} has no {name!r} column (columns: "
                                    f"{', '.join(schema.names[:20]) or 'none'})")
    for column in schema:
        problem = _column_problem(column.name, column.type)
        if problem:
            raise InvalidInputError(field, f"{label}: column {column.name!r} {problem}")
    return [n for n in schema.names if n not in _SPECIAL]


def _is_text(kind: Any) -> bool:
    import pyarrow.types as t

    return t.is_string(kind) or t.is_large_string(kind) or getattr(
        t, "is_string_view", lambda _k: False)(kind)


def _is_scalar(kind: Any) -> bool:
    import pyarrow.types as t

    temporal = t.is_temporal(kind) and not (t.is_duration(kind) or t.is_interval(kind))
    return (_is_text(kind) or t.is_integer(kind) or t.is_floating(kind) or t.is_boolean(kind)
            or t.is_null(kind) or temporal)


def _json_value(value: Any) -> Any:
    # Dates and times become ISO 8601 text, as PostHog's SDKs send them.
    return value.isoformat() if isinstance(value, datetime | date | time) else value


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [n.strip() for n in str(value).split(";") if n.strip()]


def _rows(batches: Iterator[Any], props: list[str], where: str) -> Iterator[dict[str, Any]]:
    index = 0
    for batch in batches:
        columns = {name: batch.column(name).to_pylist() for name in batch.schema.names}
        gtis, keys = columns["group_type_index"], columns["group_key"]
        unsets, nulls = columns.get("$unset"), columns.get("$set_null")
        for i in range(batch.num_rows):
            index += 1
            key = keys[i]
            for name, value in (("group_type_index", gtis[i]), ("group_key", key)):
                if value is None:
                    raise InvalidInputError(f"row {index}: {name}", f"is empty; every row of "
                                            f"{where} needs a {name}")
            yield {"group_type_index": gtis[i], "group_key": key if isinstance(key, str)
                   else str(key),
                   "set": {p: _json_value(columns[p][i]) for p in props
                           if columns[p][i] is not None},
                   "unset": _names(unsets[i]) if unsets else [],
                   "set_null": _names(nulls[i]) if nulls else []}


def frame_rows(table: Any) -> Iterator[dict[str, Any]]:
    """Raw rows of a DataFrame or Arrow table, a record batch at a time."""
    pa = require_pyarrow("updates")
    try:
        reader = table if isinstance(table, pa.RecordBatchReader) else (
            pa.RecordBatchReader.from_stream(table))
    except Exception as exc:  # the frame's own conversion error names the column
        raise InvalidInputError("updates", f"cannot read the table through Arrow: "
                                f"{type(exc).__name__}: {str(exc)[:300]}") from None
    props = _check_schema(reader.schema, "updates", "the table")
    return _rows(iter(reader), props, "updates")


def parquet_rows(handle: IO[bytes], name: str) -> Iterator[dict[str, Any]]:
    """Raw rows of a Parquet file, streamed a record batch at a time (never loaded whole)."""
    require_pyarrow("source_path")
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(handle)
    except Exception as exc:  # not a Parquet file, or a truncated one
        raise InvalidInputError("source_path", f"{name} is not a readable Parquet file: "
                                f"{type(exc).__name__}: {str(exc)[:300]}") from None
    props = _check_schema(parquet.schema_arrow, "source_path", name)
    return _rows(parquet.iter_batches(batch_size=BATCH_ROWS), props, name)
