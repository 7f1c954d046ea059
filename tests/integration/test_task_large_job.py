"""A whole job replays, up to the page limit: a 2,000-page job's history is kept from its first
event to its terminal one.

Before, each zone event forced the pending progress update out (about one progress write per
zone event, ~200/s), and the history was capped at ``stream_maxlen`` (10,000) events whatever
the job declared, so a large job was trimmed and a page replaying it from the start got
``recovered: false, reason: trimmed``. Now progress is written at most
``progress_max_rate_hz`` per job (10/s) whatever the zones do, zone and lifecycle events are all
kept, and each declared zone adds room for its own events to the job's history bound.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from progress_bridge.capture.task import ProgressTask
from progress_bridge.config import Settings
from progress_bridge.events import (
    TERMINAL_TYPES,
    PageInfo,
    ProcessingProgress,
    ZoneInfo,
)
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.store import EventStore
from tests.integration.test_task_lifecycle import wait_for

pytestmark = pytest.mark.slow

PAGES = Settings().max_pages  # the page limit (2,000)
ZONES_PER_PAGE = 3


@pytest.fixture
def app(redis_url: str) -> Iterator[Celery]:
    app = Celery(f"large-{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.conf.update(
        broker_url=redis_url,
        result_backend=redis_url,
        progress_settings=Settings(redis_url=redis_url),  # defaults: 10 Hz, 10,000 events
        task_default_queue=app.main,
        broker_connection_retry_on_startup=True,
    )

    @app.task(base=ProgressTask, bind=True, name=f"{app.main}.manual")
    def manual(self: ProgressTask, pages: int) -> dict[str, Any]:
        # As the PDF task does: each page's zones declared when the page is opened, then each
        # zone processed and completed, with progress calls in between.
        for page in range(1, pages + 1):
            zones = [
                ZoneInfo(zone_id=f"p{page}-z{z}", index=(page - 1) * ZONES_PER_PAGE + z, page=page)
                for z in range(ZONES_PER_PAGE)
            ]
            self.declare_zones(zones, [PageInfo(number=page, width=595, height=842)])
            for zone in zones:
                self.zone_processing(zone.zone_id, tool="pdfplumber.words")
                self.set_progress(operation=f"page {page}")
                self.zone_completed(zone.zone_id, tool="pdfplumber.words", confidence=0.95)
        return {"summary": f"{pages} pages"}

    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False):
        yield app


def test_a_job_at_the_page_limit_replays_from_the_start_after_its_end(
    app: Celery, store: EventStore
) -> None:
    # 1. Run the job to its end (2,000 pages x 3 zones: 12,000 zone events).
    result = app.tasks[f"{app.main}.manual"].submit(PAGES, owner="ivan")
    assert result.get(timeout=300) == {"summary": f"{PAGES} pages"}
    # (task_success, which writes the end, runs after Celery stored the result.)
    snap = wait_for(
        lambda: (s := store.snapshot(result.id)) is not None and s.status == "completed" and s,
        "the job's end",
    )

    # 2. A subscriber arriving after the end replays from 0-0: the whole history, in order.
    replay = store.replay(result.id, snap.epoch, "0-0")
    assert (replay.recovered, replay.reason) == (True, "ok")
    events = [entry.event() for entry in replay.entries]
    types = [e.type for e in events]
    assert types[0] == "processing_queued" and types[-1] == "processing_completed"
    assert sum(t in TERMINAL_TYPES for t in types) == 1
    zones = PAGES * ZONES_PER_PAGE
    assert types.count("zone_completed") == types.count("zone_processing") == zones
    assert types.count("zones_declared") == PAGES
    assert len(events) > Settings().stream_maxlen  # more than the old bound kept

    # 3. Progress was written at most 10 times a second (server time of each entry), whatever
    # the zone events did: about one per 0.1 s of the run, not one per zone event.
    progress_ms = [
        parse_stream_id(e.id or "")[0] for e in events if isinstance(e, ProcessingProgress)
    ]
    run_s = (parse_stream_id(events[-1].id or "")[0] - parse_stream_id(events[1].id or "")[0]) / 1e3
    assert len(progress_ms) <= 10 * run_s + 3, (len(progress_ms), run_s)
    # In any full second at most 10 writes (+1: the last update, flushed as the task returns).
    for i in range(len(progress_ms) - 11):
        assert progress_ms[i + 11] - progress_ms[i] >= 1000 - 5
