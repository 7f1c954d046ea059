"""The same lifecycle on the solo pool.

In its own module on purpose: two in-process Celery workers in one process share kombu's event
loop, and a threads worker left running beside this one (test_task_lifecycle's module-scoped
worker) could hang in a blocking read at shutdown. Module order guarantees one worker at a time.
"""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker

from progress_bridge.store import EventStore
from tests.conftest import TIMEOUT
from tests.integration.test_task_lifecycle import finished_history, make_app


def test_solo_pool_writes_the_same_lifecycle(redis_url: str, store: EventStore) -> None:
    solo = make_app(redis_url)
    with start_worker(solo, pool="solo", perform_ping_check=False):
        ok = solo.tasks[f"{solo.main}.walk"].submit(owner="sol")
        bad = solo.tasks[f"{solo.main}.fail"].submit(owner="sol")
        ok.get(timeout=TIMEOUT)
        with pytest.raises(ValueError, match="unreadable"):
            bad.get(timeout=TIMEOUT)
        ok_events, bad_events = finished_history(store, ok.id), finished_history(store, bad.id)
    assert [ok_events[0].type, ok_events[1].type, ok_events[-1].type] == [
        "processing_queued",
        "processing_started",
        "processing_completed",
    ]
    assert bad_events[-1].type == "processing_failed"
