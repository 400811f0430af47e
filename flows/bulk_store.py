"""The bulk job's working set on disk: every input row and, per group, what it wants and
the route it takes, in a SQLite file in the run's temporary directory.

A million rows would not fit a small worker as Python objects; here they cost disk, and
the job keeps in memory only a page of groups at a time, what the report shows, and what
verification still waits for. Keys sort as SQLite's BINARY collation sorts them, by UTF-8
bytes — the order ClickHouse uses for `ORDER BY key` (a `String` compares bytes), so a
page of HogQL results and a range of stored groups line up.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect_posthog.client import InvalidInputError
from prefect_posthog.flows.bulk_models import GroupPropertyUpdate, Row

# `route` holds a `bulk_models.Route`; `send` the JSON of what capture sends; `before` the
# sent properties' old values (for the report); `seen` whether reading back showed them.
_SCHEMA = """
create table rows (row integer primary key, gti integer not null, key text not null,
                   upd text not null);
create table groups (gti integer not null, key text not null, upd text not null,
                     first_row integer not null, n integer not null,
                     route text, send text, before text, created integer default 0,
                     seen integer default 0, note text, primary key (gti, key)) without rowid;
"""
_FLUSH = 5000  # rows buffered before one executemany


@dataclass
class Wanted:
    """What one group wants: merged over its rows."""

    gti: int
    key: str
    set: dict[str, Any]
    unset: list[str]
    set_null: list[str]


@dataclass
class InputSummary:
    """What validation learnt about the input."""

    rows: int = 0
    max_writes: int = 0  # every property set, unset or nulled counted: an upper bound
    nulls: int = 0  # rows that set an explicit null
    types: dict[int, int] = field(default_factory=dict)  # groups per group type


def _upd(update: GroupPropertyUpdate) -> str:
    return json.dumps([update.set, update.unset, update.set_null])


def _wanted(gti: int, key: str, upd: str) -> Wanted:
    sets, unset, nulls = json.loads(upd)
    return Wanted(gti, key, sets, unset, nulls)


class BulkStore:
    """Rows and groups of one run; use `BulkStore.temporary()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # A scratch file for one run: durability buys nothing, speed does.
        self.db.executescript("pragma journal_mode=off; pragma synchronous=off; "
                              "pragma temp_store=file; pragma cache_size=-16000;" + _SCHEMA)
        self._buffer: list[tuple[int, int, str, str]] = []
        self.summary = InputSummary()

    @classmethod
    @contextmanager
    def temporary(cls) -> Iterator[BulkStore]:
        with tempfile.TemporaryDirectory(prefix="posthog-bulk-") as folder:
            store = cls(Path(folder) / "bulk.sqlite")
            try:
                yield store
            finally:
                store.db.close()

    # -- input ---------------------------------------------------------------------------

    def add(self, row: int, u: GroupPropertyUpdate) -> None:
        self.summary.rows += 1
        self.summary.max_writes += len(u.set) + len(u.unset) + len(u.set_null)
        self.summary.nulls += bool(u.set_null)
        self._buffer.append((row, u.group_type_index, u.group_key, _upd(u)))
        if len(self._buffer) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        with self._transaction():
            self.db.executemany("insert into rows values (?, ?, ?, ?)", self._buffer)
        self._buffer = []

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # One transaction per batch: in autocommit every row would be one of its own.
        self.db.execute("begin")
        try:
            yield
        finally:
            self.db.execute("commit")

    def close_input(self) -> InputSummary:
        """Group the rows; refuse two rows giving one group's property different values.

        Rows for the same group are allowed when they agree: any order of applying rows
        that disagree would rewrite the property on every run.

        Raises:
            InvalidInputError: Naming the later row and the property.
        """
        self._flush()
        db = self.db
        db.execute("insert into groups (gti, key, upd, first_row, n) select gti, key, "
                   "min(upd), min(row), count(*) from rows group by gti, key")
        repeated = db.execute("select gti, key from groups where n > 1").fetchall()
        if repeated:
            db.execute("create index rows_by_group on rows (gti, key)")
        merged = [(json.dumps(self._merge(gti, key)), gti, key) for gti, key in repeated]
        with self._transaction():
            db.executemany("update groups set upd = ? where gti = ? and key = ?", merged)
        self.summary.types = dict(db.execute("select gti, count(*) from groups group by gti"))
        return self.summary

    def _merge(self, gti: int, key: str) -> list[Any]:
        sets: dict[str, Any] = {}
        unset: list[str] = []
        nulls: list[str] = []
        seen: dict[str, tuple[str, str, int]] = {}  # name -> (kind, JSON value, row)
        for row, upd in self.db.execute("select row, upd from rows where gti = ? and key = ? "
                                        "order by row", (gti, key)):
            s, u, n = json.loads(upd)
            for kind, name, value in [*(("set", k, json.dumps(v, sort_keys=True))
                                        for k, v in s.items()),
                                      *(("unset", k, "") for k in u),
                                      *(("set_null", k, "null") for k in n)]:
                earlier = seen.get(name)
                if earlier is not None and earlier[:2] != (kind, value):
                    raise InvalidInputError(
                        f"row {row}: {kind}.{name}",
                        f"conflicts with row {earlier[2]}, which gives group {key!r} "
                        f"another value for {name!r}; merge the two rows")
                seen.setdefault(name, (kind, value, row))
            sets.update(s)
            unset += [k for k in u if k not in unset]
            nulls += [k for k in n if k not in nulls]
        return [sets, unset, nulls]

    # -- reading back --------------------------------------------------------------------

    def rows(self, route: str | None = None, *, unseen: bool = False) -> Iterator[Row]:
        """Rows in input order: all, or those of groups on `route` (not yet seen)."""
        if route is None:
            cursor = self.db.execute("select row, gti, key, upd, null from rows order by row")
        elif self.count(route, unseen=unseen):
            cursor = self.db.execute(
                "select r.row, r.gti, r.key, r.upd, g.note from rows r join groups g on "
                "g.gti = r.gti and g.key = r.key where g.route = ?"
                + (" and g.seen = 0" if unseen else "") + " order by r.row", (route,))
        else:
            return
        for row, gti, key, upd, note in cursor:
            sets, unset, nulls = json.loads(upd)
            yield Row.model_construct(row=row, note=note, update=GroupPropertyUpdate.
                                      model_construct(group_type_index=gti, group_key=key,
                                                      set=sets, unset=unset, set_null=nulls))

    def outcome_rows(self) -> Iterator[tuple[Any, ...]]:
        """Every row with its group's plan, in input order: (row, gti, key, upd, route,
        send, before, created, seen, note, rows of the group)."""
        return iter(self.db.execute(
            "select r.row, r.gti, r.key, r.upd, g.route, g.send, g.before, g.created, "
            "g.seen, g.note, g.n from rows r join groups g on g.gti = r.gti and g.key = r.key "
            "order by r.row"))

    def wanted(self, gti: int, after: str | None, upto: str | None,
               route: str | None = None) -> Iterator[Wanted]:
        """The groups of a type with a key in (after, upto], in key order."""
        sql, args = "select key, upd from groups where gti = ?", [gti]
        if after is not None:
            sql, args = sql + " and key > ?", [*args, after]
        if upto is not None:
            sql, args = sql + " and key <= ?", [*args, upto]
        if route is not None:
            sql, args = sql + " and route = ? and seen = 0", [*args, route]
        for key, upd in self.db.execute(sql + " order by key", args):
            yield _wanted(gti, key, upd)

    def sent(self, gti: int, after: str | None, upto: str | None) -> Iterator[tuple[str, str]]:
        """Captured groups not seen yet in (after, upto]: key and what they were sent."""
        sql, args = ("select key, send from groups where gti = ? and route = 'capture' and "
                     "seen = 0"), [gti]
        if after is not None:
            sql, args = sql + " and key > ?", [*args, after]
        if upto is not None:
            sql, args = sql + " and key <= ?", [*args, upto]
        return iter(self.db.execute(sql + " order by key", args))

    def to_send(self) -> Iterator[tuple[int, str, str]]:
        """Groups routed to capture: type, key and the JSON of what to send, by key."""
        return iter(self.db.execute("select gti, key, send from groups where route = "
                                    "'capture' order by gti, key"))

    def split_keys(self, gti: int, every: int, *, pending: bool = False) -> list[str]:
        """Keys at every `every`-th group of a type (pending captured ones only, if asked),
        and the last: the bounds of ranges holding `every` groups each."""
        where = "gti = ?" + (" and route = 'capture' and seen = 0" if pending else "")
        count = self.count_of(gti, pending=pending)
        offsets = [*range(every - 1, count - 1, every), count - 1] if count else []
        return [self.db.execute(f"select key from groups where {where} order by key "
                                "limit 1 offset ?", (gti, offset)).fetchone()[0]
                for offset in offsets]

    def count_of(self, gti: int, *, pending: bool = False) -> int:
        where = "gti = ?" + (" and route = 'capture' and seen = 0" if pending else "")
        return self.db.execute(f"select count(*) from groups where {where}", (gti,)
                               ).fetchone()[0]

    def first_key(self, gti: int, *, pending: bool = False) -> str | None:
        where = "gti = ?" + (" and route = 'capture' and seen = 0" if pending else "")
        found = self.db.execute(f"select min(key) from groups where {where}", (gti,)
                                ).fetchone()
        return found[0] if found else None

    def types(self, *, pending: bool = False) -> list[int]:
        where = " where route = 'capture' and seen = 0" if pending else ""
        return [gti for (gti,) in self.db.execute(f"select distinct gti from groups{where} "
                                                  "order by gti")]

    # -- plans and outcomes --------------------------------------------------------------

    def plan(self, decisions: Iterable[tuple[Any, ...]]) -> None:
        """Store (route, send, before, created, note, gti, key) for each group."""
        with self._transaction():
            self.db.executemany("update groups set route = ?, send = ?, before = ?, "
                                "created = ?, note = ? where gti = ? and key = ?", decisions)

    def reroute(self, groups: Iterable[tuple[int, str]], route: str, note: str) -> None:
        with self._transaction():
            self.db.executemany("update groups set route = ?, note = ? where gti = ? and "
                                "key = ?", ((route, note, gti, key) for gti, key in groups))

    def mark_seen(self, groups: Iterable[tuple[int, str]]) -> None:
        with self._transaction():
            self.db.executemany("update groups set seen = 1 where gti = ? and key = ?", groups)

    def count(self, route: str, *, unseen: bool = False) -> int:
        sql = "select count(*) from groups where route = ?" + (" and seen = 0" if unseen
                                                                 else "")
        return self.db.execute(sql, (route,)).fetchone()[0]
