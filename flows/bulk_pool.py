"""The bulk job's threads: a bounded map, and a bounded set of producers streaming into one
consumer. Prefect records only so many task runs a second, so parallel work inside one
task runs on plain threads; `copy_context` keeps Prefect's run context (and its logger)
in them."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextvars import copy_context
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


def _start(target: Callable[[], None], count: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=copy_context().run, args=(target,), daemon=True)
               for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def run_bounded(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """`fn` over `items` on at most `workers` threads, results in input order.

    Workers pull from a shared index, so bookkeeping is O(1) per item (an executor would
    hold one Future, with its lock, per item of a 10,000-row batch).
    """
    results: list[R] = [None] * len(items)  # type: ignore[list-item]
    cursor = iter(range(len(items)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        while not errors:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            try:
                results[index] = fn(items[index])
            except BaseException as exc:  # surfaced below, after the other workers stop
                errors.append(exc)

    for thread in _start(work, max(1, min(workers, len(items)))):
        thread.join()
    if errors:
        raise errors[0]
    return results


def stream_bounded(producers: Iterable[Callable[[], Iterable[T]]], workers: int,
                   buffer: int) -> Iterator[T]:
    """Items of every producer, run on at most `workers` threads, as they come.

    A producer makes its next item only while fewer than `buffer` items wait for the
    consumer (the one being consumed included), so memory stays bounded however much the
    producers hold in all; a producer's error stops the others and is raised here.
    """
    pending = list(producers)
    cursor = iter(range(len(pending)))
    lock = threading.Lock()
    out: queue.Queue = queue.Queue()
    room = threading.Semaphore(max(1, buffer))
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                items = iter(pending[index]())
                while not stop.is_set():
                    while not room.acquire(timeout=0.1):
                        if stop.is_set():
                            return
                    item = next(items, _DONE)
                    if item is _DONE:
                        room.release()
                        break
                    out.put(item)
        except BaseException as exc:  # handed to the consumer
            stop.set()
            out.put(exc)
        finally:
            out.put(_DONE)

    count = max(1, min(workers, len(pending)))
    threads = _start(work, count)
    done = 0
    try:
        while done < count:
            item = out.get()
            if item is _DONE:
                done += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
                del item
                room.release()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
