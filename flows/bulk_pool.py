"""The bulk job's threads: a bounded map, and a bounded set of producers streaming into one
consumer. Prefect records only so many task runs a second, so parallel work inside one
task runs on plain threads; `copy_context` keeps Prefect's run context (and its logger)
in them."""

from __future__ import annotations

import contextlib
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

    At most `buffer` items wait for the consumer, so memory stays bounded however much
    the producers hold in all; a producer's error stops the others and is raised here.
    """
    pending = list(producers)
    cursor = iter(range(len(pending)))
    lock = threading.Lock()
    out: queue.Queue = queue.Queue(maxsize=max(1, buffer))
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                for item in pending[index]():
                    while not stop.is_set():
                        try:
                            out.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
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
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):
            with contextlib.suppress(queue.Empty):
                out.get(timeout=0.05)
