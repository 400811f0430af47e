"""How the store keeps groups: one table per (team, group type), each indexed by key and by
(created_at, key), so a page costs what the page holds, not what the type holds.

A million groups must not make the emulator the bottleneck of a benchmark: HogQL reads
``key > {after} order by key limit 50000`` pages, the list endpoint reads 100 rows before
a cursor, ingestion looks groups up by key. Properties are kept as their JSON text, which is
what HogQL returns, so reading a page serialises nothing and groups seeded with the same
properties share one string.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterator
from typing import Any

_CHUNK = 1000  # a chunk splits when it reaches twice this


def _identity(value: Any) -> Any:
    return value


class SortedList:
    """A list kept sorted by ``key``, in chunks: finding a position costs O(log n) and an
    insert moves at most one chunk (appending in order is O(1))."""

    def __init__(self, key: Callable[[Any], Any] = _identity) -> None:
        self._key = key
        self._chunks: list[list[Any]] = []
        self._maxes: list[Any] = []  # the key of each chunk's last item
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def add(self, item: Any) -> None:
        value = self._key(item)
        self._len += 1
        if not self._chunks:
            self._chunks.append([item])
            self._maxes.append(value)
            return
        index = bisect.bisect_right(self._maxes, value)
        if index == len(self._chunks):  # past the end: append to the last chunk
            index -= 1
            self._chunks[index].append(item)
            self._maxes[index] = value
        else:
            bisect.insort_right(self._chunks[index], item, key=self._key)
        if len(self._chunks[index]) >= 2 * _CHUNK:
            chunk = self._chunks[index]
            self._chunks[index:index + 1] = [chunk[:_CHUNK], chunk[_CHUNK:]]
            self._maxes[index:index + 1] = [self._key(chunk[_CHUNK - 1]),
                                            self._key(chunk[-1])]

    def after(self, value: Any = None) -> Iterator[Any]:
        """Items whose key is greater than ``value`` (all when ``None``), ascending."""
        start = 0 if value is None else bisect.bisect_right(self._maxes, value)
        for index in range(start, len(self._chunks)):
            chunk = self._chunks[index]
            first = 0 if value is None else bisect.bisect_right(chunk, value, key=self._key)
            yield from chunk[first:] if first else chunk

    def before(self, value: Any = None) -> Iterator[Any]:
        """Items whose key is less than ``value`` (all when ``None``), descending."""
        if value is None:
            start = len(self._chunks) - 1
        else:
            start = min(bisect.bisect_left(self._maxes, value), len(self._chunks) - 1)
        for index in range(start, -1, -1):
            chunk = self._chunks[index]
            end = len(chunk) if value is None else bisect.bisect_left(chunk, value,
                                                                       key=self._key)
            for position in range(end - 1, -1, -1):
                yield chunk[position]


class Group:
    """One group. ``properties`` is the JSON text of ``group_properties``."""

    __slots__ = ("created_us", "key", "pk", "properties", "team", "type_index")

    def __init__(self, team: int, type_index: int, key: str, properties: str, created_us: int,
                 pk: int) -> None:
        self.team, self.type_index, self.key = team, type_index, key
        self.properties, self.created_us, self.pk = properties, created_us, pk

    @property
    def created_at(self) -> float:
        return self.created_us / 1_000_000

    def props(self) -> dict[str, Any]:
        return json.loads(self.properties)

    def set_props(self, props: dict[str, Any]) -> None:
        self.properties = json.dumps(props)

    def position(self) -> tuple[int, str]:
        """Where the list endpoint orders it: (created_at, key)."""
        return self.created_us, self.key


class GroupTable:
    """The groups of one type of one team, by key and by (created_at, key)."""

    def __init__(self) -> None:
        self.rows: dict[str, Group] = {}
        self.by_key = SortedList()
        self.by_created = SortedList(key=Group.position)

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, group: Group) -> None:
        self.rows[group.key] = group
        self.by_key.add(group.key)
        self.by_created.add(group)

    def after(self, key: str | None) -> Iterator[Group]:
        """Groups with a key greater than ``key``, in key order."""
        rows = self.rows
        return (rows[k] for k in self.by_key.after(key))

    def newest_before(self, position: tuple[int, str] | None) -> Iterator[Group]:
        """Groups before ``(created_us, key)`` (all when ``None``), newest first."""
        return self.by_created.before(position)


class GroupStore:
    """Every group of every team, one `GroupTable` per (team, group type index)."""

    def __init__(self) -> None:
        self.tables: dict[tuple[int, int], GroupTable] = {}

    def table(self, team: int, type_index: int) -> GroupTable:
        found = self.tables.get((team, type_index))
        if found is None:
            found = self.tables[(team, type_index)] = GroupTable()
        return found

    def get(self, team: int, type_index: int, key: str) -> Group | None:
        found = self.tables.get((team, type_index))
        return found.rows.get(key) if found is not None else None

    def of_team(self, team: int) -> Iterator[Group]:
        for (owner, _), table in sorted(self.tables.items()):
            if owner == team:
                yield from table.rows.values()

    def count(self) -> int:
        return sum(len(table) for table in self.tables.values())

    def dump(self) -> dict[str, dict]:
        """The saved form: ``"[team, index, key]"`` -> the group as a JSON object."""
        return {json.dumps([g.team, g.type_index, g.key]): {
            "team": g.team, "group_type_index": g.type_index, "group_key": g.key,
            "group_properties": g.props(), "created_at": g.created_at,
            "created_at_us": g.created_us, "pk": g.pk}
            for table in self.tables.values() for g in table.rows.values()}

    @classmethod
    def load(cls, saved: dict[str, dict]) -> GroupStore:
        store = cls()
        for row in sorted(saved.values(), key=lambda r: (r["created_at_us"], r["group_key"])):
            store.table(row["team"], row["group_type_index"]).add(Group(
                row["team"], row["group_type_index"], row["group_key"],
                json.dumps(row["group_properties"]), row["created_at_us"], row["pk"]))
        return store
