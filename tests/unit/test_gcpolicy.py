"""The bridge server's garbage-collector policy (:mod:`progress_bridge.gcpolicy`), applied to
this process and undone after each test."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from progress_bridge.bridge import gcpolicy
from tests.conftest import TIMEOUT


@pytest.fixture
def restore_gc() -> Iterator[threading.Event]:
    thresholds = gc.get_threshold()
    stop = threading.Event()
    yield stop
    stop.set()
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_growth_never_triggers_a_full_collection_and_startup_objects_are_frozen(
    restore_gc: threading.Event,
) -> None:
    young, middle, _ = gc.get_threshold()
    assert gcpolicy.install(0, restore_gc) is None  # 0: no timed collections either
    assert gc.get_threshold() == (young, middle, gcpolicy.FULL_NEVER)
    assert gc.get_freeze_count() > 0


def test_the_timed_full_collection_frees_a_cycle_left_in_the_old_generation(
    restore_gc: threading.Event,
) -> None:
    freed = threading.Event()

    class Node:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            freed.set()

    gcpolicy.install(0.05, restore_gc)
    node = Node()
    gc.collect(1)  # survives the young collections: now in the old generation
    del node  # unreachable, but only a full collection finds the cycle
    assert freed.wait(TIMEOUT)


def test_a_full_collection_reports_what_it_found() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    Node()
    found, took = gcpolicy.full_collection()
    assert found >= 2  # the node and its __dict__
    assert took >= 0


def test_a_cycle_broken_by_a_finalizer_is_not_counted_as_found_but_shows_as_freed() -> None:
    # A suspended generator holding its owner (what websockets' parser does): the collector
    # closes the generator, which breaks the cycle, and reports nothing found.
    from progress_bridge.bridge.metrics import GC_STATS

    class Owner:
        def __init__(self) -> None:
            self.parser = self.parse()
            next(self.parser)
            self.payload = [[] for _ in range(1000)]  # tracked objects

        def parse(self) -> Iterator[None]:
            while True:
                yield

    gc.collect()
    before = (GC_STATS.collections, GC_STATS.freed)
    gc.disable()
    try:
        Owner()
        found, _ = gcpolicy.full_collection()
    finally:
        gc.enable()
    assert found < 10  # the collector's own count misses it...
    assert GC_STATS.collections == before[0] + 1
    # ...the objects freed do not (1,002 of them; threads other tests left running in this
    # process may allocate a few meanwhile, which the count nets out).
    assert GC_STATS.freed - before[1] >= 900
