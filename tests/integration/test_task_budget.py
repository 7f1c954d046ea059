"""A Redis outage never holds a running task longer than the producer's budget.

The budget is one Redis call: ``producer_connect_timeout_s`` + ``producer_socket_timeout_s``
(0.5 + 0.5 s by default), once per outage; after that the outage buffer answers alone, and
Celery's own calls (``update_state``, the ``task-progress`` event) never run on the task's
thread. The task times every progress call it makes while Redis is away:

- paused with SIGSTOP (a stalled Redis: connections stay open, new ones are accepted, nothing
  answers — the case that hurts), one real valkey-server being the broker, the result backend
  and the progress store, as in a usual deployment;
- stopped (refused connections) and restarted empty on the same port: the result backend and
  the progress store (the broker stays up: a broker restarted empty under an in-process test
  worker crashes kombu's consumer, which is not what this measures).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from progress_bridge.capture.producer import capture_for
from progress_bridge.capture.task import ProgressTask
from progress_bridge.config import Settings
from progress_bridge.events import ZoneInfo
from progress_bridge.store import EventStore
from progress_bridge.store.embedded import EmbeddedValkey
from tests.conftest import TIMEOUT
from tests.integration.test_task_lifecycle import wait_for

pytestmark = pytest.mark.slow

DEFAULTS = Settings()
#: What the operators' guide promises: one connect plus one read timeout.
BUDGET_S = DEFAULTS.producer_connect_timeout_s + DEFAULTS.producer_socket_timeout_s
#: Scheduling lateness on a loaded 2-core machine.
SLACK_S = 0.4
ZONES = [ZoneInfo(zone_id=f"z{i}", index=i, page=1 + i // 4) for i in range(24)]

#: Per run: gates the test holds the task at, and the call timings the task reports back.
runs: dict[str, dict[str, Any]] = {}


def make_app(url: str, broker_url: str | None = None) -> Celery:
    app = Celery(f"budget-{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.conf.update(
        broker_url=broker_url or url,
        result_backend=url,
        progress_settings=Settings(redis_url=url, progress_max_rate_hz=20),
        worker_send_task_events=True,
        task_acks_late=True,
        broker_connection_retry_on_startup=True,
        task_default_queue=app.main,
    )

    @app.task(base=ProgressTask, bind=True, name=f"{app.main}.timed")
    def timed(self: ProgressTask, run: str) -> str:
        state = runs[run]
        self.declare_zones(ZONES)
        state["reached"].set()
        assert state["go"].wait(TIMEOUT)  # the test breaks Redis meanwhile
        timings: list[float] = []

        def timed_call(call: Any) -> None:
            began = time.monotonic()
            call()
            timings.append(time.monotonic() - began)

        for zone in ZONES:
            timed_call(lambda z=zone: self.zone_processing(z.zone_id, tool="ocr"))
            for step in range(3):
                timed_call(lambda z=zone, s=step: self.set_progress(operation=f"{z} {s}"))
                time.sleep(0.01)  # the work between two calls
            timed_call(lambda z=zone: self.zone_completed(z.zone_id, tool="ocr", confidence=0.9))
        state["timings"] = timings
        state["done"].set()
        # Return (and have Celery store the result) once Redis is back: a result backend that is
        # down when a task returns fails the task in Celery itself, whatever progress does.
        assert state["healed"].wait(TIMEOUT)
        return "ok"

    return app


@pytest.fixture
def server() -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey().start()
    yield server
    server.stop()


@pytest.fixture
def app(server: EmbeddedValkey) -> Iterator[Celery]:
    app = make_app(server.url)
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False):
        yield app


@pytest.fixture
def app_on_session_broker(server: EmbeddedValkey, redis_url: str) -> Iterator[Celery]:
    app = make_app(server.url, broker_url=redis_url)
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False):
        yield app


def run_through_outage(
    app: Celery, break_redis: Any, heal_redis: Any, *, check_result: bool = True
) -> tuple[Any, list[float]]:
    # 1. Start the job; it declares its zones with Redis up and waits.
    run = uuid.uuid4().hex
    runs[run] = {name: threading.Event() for name in ("reached", "go", "done", "healed")}
    result = app.tasks[f"{app.main}.timed"].delay(run)
    assert runs[run]["reached"].wait(TIMEOUT)
    # 2. Break Redis, let the task make its 120 progress calls, heal Redis.
    break_redis()
    try:
        runs[run]["go"].set()
        assert runs[run]["done"].wait(TIMEOUT), "the task's progress calls did not finish"
    finally:
        heal_redis()
        runs[run]["healed"].set()
    # 3. The task's own result is unaffected.
    if check_result:
        assert result.get(timeout=TIMEOUT) == "ok"
    timings: list[float] = runs.pop(run)["timings"]
    return result, timings


def assert_within_budget(timings: list[float]) -> None:
    assert len(timings) == len(ZONES) * 5
    # No call waited longer than one Redis call's budget ...
    assert max(timings) <= BUDGET_S + SLACK_S, f"a progress call waited {max(timings):.2f} s"
    # ... and only the call that found Redis away waited at all: the others queued at once.
    slow = [t for t in timings if t > 0.05]
    assert len(slow) <= 1, f"{len(slow)} calls waited for Redis: {slow}"


def test_a_stalled_redis_holds_the_task_at_most_one_budget(
    app: Celery, server: EmbeddedValkey, settings: Settings
) -> None:
    result, timings = run_through_outage(app, server.pause, server.resume)
    assert_within_budget(timings)
    assert max(timings) >= DEFAULTS.producer_socket_timeout_s * 0.8  # it did meet the stall
    capture = capture_for(app)
    assert capture.stats.buffered > 0
    # Redis answers again: the buffer drains and the job ends completed, every zone kept.
    reader = EventStore.from_url(server.url, settings)
    types = wait_for(
        lambda: (
            (t := [e.type for e in reader.history(result.id)])[-1:] == ["processing_completed"]
            and t
        ),
        "the job's end",
    )
    reader.client.close()
    assert types.count("zone_completed") == len(ZONES)
    wait_for(lambda: not capture.buffer.down, "the buffer to flush")


def test_a_stopped_redis_holds_the_task_at_most_one_budget(
    app_on_session_broker: Celery, server: EmbeddedValkey, settings: Settings
) -> None:
    app, port = app_on_session_broker, server.port
    restarted: list[EmbeddedValkey] = []
    # (The result is not awaited: the result consumer's subscription died with the server.)
    result, timings = run_through_outage(
        app,
        server.stop,
        lambda: restarted.append(EmbeddedValkey(port=port).start()),
        check_result=False,
    )
    try:
        assert_within_budget(timings)
        capture = capture_for(app)
        assert capture.stats.buffered > 0
        # The restarted (empty) server gets the buffered events; the job ends completed.
        reader = EventStore.from_url(restarted[0].url, settings)

        def ended() -> list[str] | None:
            types = [e.type for e in reader.history(result.id)]
            return types if types[-1:] == ["processing_completed"] else None

        types = wait_for(ended, "the buffered end of the job")
        reader.client.close()
        assert types.count("zone_completed") == len(ZONES)
    finally:
        restarted[0].stop()
