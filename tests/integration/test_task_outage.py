"""A Redis outage never fails a task: events wait in a bounded buffer and flush in order.

The progress store here is a second embedded server, separate from the broker and result backend
(the session server), so it can be stopped and restarted on the same port mid-task.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from progress_bridge.capture.outage import OutageBuffer as Outbox
from progress_bridge.capture.producer import capture_for
from progress_bridge.config import Settings
from progress_bridge.events import (
    ProcessingProgress,
    ProcessingStarted,
    ZoneCompleted,
)
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.store import EventStore
from progress_bridge.store.embedded import EmbeddedValkey, free_port
from tests.conftest import TIMEOUT
from tests.integration.test_task_lifecycle import gates, make_app, wait_for


@pytest.fixture
def progress_server() -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey().start()
    yield server
    server.stop()


@pytest.fixture
def outage_app(redis_url: str, progress_server: EmbeddedValkey) -> Iterator[Celery]:
    app = make_app(redis_url, progress_url=progress_server.url)
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
        yield app


def test_task_succeeds_while_the_store_is_down_and_buffered_events_flush_in_order(
    outage_app: Celery, progress_server: EmbeddedValkey, settings: Settings
) -> None:
    # 1. Run a job up to zone 0 with the store up.
    gate = uuid.uuid4().hex
    gates[gate], gates[gate + ":reached"] = threading.Event(), threading.Event()
    result = outage_app.tasks[f"{outage_app.main}.walk"].submit(owner="dana", kwargs={"gate": gate})
    assert gates[gate + ":reached"].wait(TIMEOUT)
    # 2. Stop the store; the task runs on to success.
    progress_server.stop()
    gates[gate].set()
    assert result.get(timeout=TIMEOUT) == {"summary": "3 zones"}
    capture = capture_for(outage_app)
    wait_for(
        lambda: [e.type for e in capture.buffer.pending_events()][-1:] == ["processing_completed"],
        "the terminal event to be buffered",
    )
    assert capture.stats.redis_errors >= 1
    buffered = capture.buffer.pending

    # 3. Restart the store on the same port (empty: no persistence): the buffer flushes itself.
    with EmbeddedValkey(port=progress_server.port) as restarted:
        wait_for(lambda: capture.buffer.pending == 0, "the buffer to flush")
        reader = EventStore.from_url(restarted.url, settings)
        events = reader.history(result.id)
        reader.client.close()
    # Everything written while the store was down arrives, in order, and the job ends completed.
    assert len(events) == buffered and capture.stats.flushed >= buffered
    types = [e.type for e in events]
    assert types[0] in ("processing_progress", "zone_completed")
    assert [e.zone_id for e in events if isinstance(e, ZoneCompleted)] == ["z0", "z1", "z2"]
    assert types[-1] == "processing_completed"
    ids = [parse_stream_id(e.id or "") for e in events]
    assert ids == sorted(ids)
    assert all(e.owner == "dana" for e in events)


def test_full_buffer_coalesces_progress_and_keeps_zone_and_lifecycle_events(
    settings: Settings,
) -> None:
    # A store on a port where nothing listens yet: every append fails and is buffered.
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    store = EventStore.from_url(url, settings, socket_connect_timeout=1)
    outbox = Outbox(store, capacity=10)
    a, b = f"job-{uuid.uuid4().hex[:8]}", f"job-{uuid.uuid4().hex[:8]}"
    for job in (a, b):
        outbox.send(ProcessingStarted(job_id=job))
    for i in range(200):
        outbox.send(ProcessingProgress(job_id=a if i % 2 else b, percent=i / 2))
        if i % 50 == 0:
            outbox.send(ProcessingStarted(job_id=a, attempt=2 + i // 50))
    assert outbox.pending <= 10 + 6  # the bound, plus never-dropped events past it
    assert outbox.stats.evicted > 150 and outbox.stats.redis_errors >= 1

    with EmbeddedValkey(port=port):
        assert outbox.flush(timeout=TIMEOUT)
        history_a, history_b = store.history(a), store.history(b)
    # Every lifecycle event survived, in order; progress kept only its latest values.
    assert [e.attempt for e in history_a if isinstance(e, ProcessingStarted)] == [1, 2, 3, 4, 5]
    last_a = [e for e in history_a if isinstance(e, ProcessingProgress)][-1]
    last_b = [e for e in history_b if isinstance(e, ProcessingProgress)][-1]
    assert (last_a.percent, last_b.percent) == (99.5, 99.0)
    store.client.close()
