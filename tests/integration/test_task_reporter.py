"""The progress reporter against the real server: bad calls fail at the call site, writing
nothing; coalescing bounds the writes; the ETA is filled in."""

from __future__ import annotations

import math
import time

import pytest

from progress_bridge.capture.producer import Capture
from progress_bridge.capture.reporter import ProgressReporter
from progress_bridge.config import Settings
from progress_bridge.events import ProcessingProgress, ZoneInfo
from progress_bridge.exceptions import InvalidEvent
from progress_bridge.store import EventStore
from tests.conftest import TIMEOUT

ZONES = [ZoneInfo(zone_id="a", index=0, page=1), ZoneInfo(zone_id="b", index=1, page=1)]


@pytest.fixture
def reporter(settings: Settings, job_id: str) -> ProgressReporter:
    reporter = ProgressReporter(Capture(settings), {"job_id": job_id, "owner": "erin"})
    reporter.declare_zones(ZONES)
    return reporter


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.set_progress(-1), "percent must be between 0 and 100, got -1"),
        (lambda r: r.set_progress(100.5), "percent must be between 0 and 100, got 100.5"),
        (lambda r: r.set_progress(math.nan), "percent must be between 0 and 100, got nan"),
        (lambda r: r.set_progress("50"), "percent must be a number, got '50'"),
        (lambda r: r.set_progress(True), "percent must be a number, got True"),
        (
            lambda r: r.zone_processing("zz", tool="t"),
            "zone 'zz' was not declared (declare_zones first)",
        ),
        (
            lambda r: r.zone_completed("zz", tool="t"),
            "zone 'zz' was not declared (declare_zones first)",
        ),
        (
            lambda r: r.zone_completed("a", tool="t", confidence=1.5),
            "invalid zone_completed: confidence: Input should be less than or equal to 1",
        ),
        (
            lambda r: r.zone_completed("a", tool="t", duration_ms=-3),
            "invalid zone_completed: duration_ms: Input should be greater than or equal to 0",
        ),
        (
            lambda r: r.zone_completed("a", tool="t", status="done"),
            "zone status must be 'completed' or 'failed', got 'done'",
        ),
        (lambda r: r.declare_zones([ZONES[0]]), "zone 'a' is declared twice"),
        (
            lambda r: r.declare_zones([{"zone_id": "c", "index": 1}]),
            "zone index 1 of zone 'c' is already used",
        ),
        (
            lambda r: r.declare_zones([{"zone_id": "c", "index": -1}]),
            "invalid zone {'zone_id': 'c', 'index': -1}: index: Input should be greater than or "
            "equal to 0",
        ),
    ],
)
def test_bad_call_raises_a_clear_error_and_writes_nothing(
    reporter: ProgressReporter, store: EventStore, job_id: str, call: object, message: str
) -> None:
    before = [e.id for e in store.history(job_id)]
    with pytest.raises(InvalidEvent) as err:
        call(reporter)  # type: ignore[operator]
    assert str(err.value) == f"{message} (job {job_id})"
    assert [e.id for e in store.history(job_id)] == before


def test_zone_completed_twice_is_refused(
    reporter: ProgressReporter, store: EventStore, job_id: str
) -> None:
    reporter.zone_processing("a", tool="t")
    reporter.zone_completed("a", tool="t")
    with pytest.raises(InvalidEvent) as err:
        reporter.zone_completed("a", tool="t")
    assert str(err.value) == f"zone 'a' completed twice (job {job_id})"
    with pytest.raises(InvalidEvent, match="zone 'a' already completed"):
        reporter.zone_processing("a", tool="t")


def test_coalescing_writes_at_most_the_rate_and_flush_writes_the_latest(
    settings: Settings, store: EventStore, job_id: str
) -> None:
    capture = Capture(settings.model_copy(update={"progress_max_rate_hz": 5.0}))
    reporter = ProgressReporter(capture, {"job_id": job_id})
    for i in range(5_000):
        reporter.set_progress(i / 50, operation=f"step {i}")
    reporter.flush()
    progress = [e for e in store.history(job_id) if isinstance(e, ProcessingProgress)]
    # One write at the first call, then at most one per 0.2 s, plus the final flush.
    assert 2 <= len(progress) <= 4
    assert (progress[-1].percent, progress[-1].current_operation) == (99.98, "step 4999")
    assert capture.stats.coalesced >= 4_990


def test_percent_follows_zones_and_carries_an_eta(
    reporter: ProgressReporter, store: EventStore, job_id: str
) -> None:
    reporter.zone_processing("a", tool="t")
    reporter.zone_completed("a", tool="t")
    reporter.flush()
    last = [e for e in store.history(job_id) if isinstance(e, ProcessingProgress)][-1]
    assert (last.percent, last.zones_completed, last.zones_total) == (50, 1, 2)
    assert reporter.percent == 50


def test_a_coalesced_update_is_written_when_due_without_another_call(
    settings: Settings, store: EventStore, job_id: str
) -> None:
    # The last update before a long silent stretch of work must not wait for the next call.
    capture = Capture(settings.model_copy(update={"progress_max_rate_hz": 5.0}))
    reporter = ProgressReporter(capture, {"job_id": job_id})
    reporter.set_progress(10, operation="reading")
    reporter.set_progress(20, operation="a long table")  # coalesced: due in 0.2 s

    def written() -> bool:
        last = [e for e in store.history(job_id) if isinstance(e, ProcessingProgress)][-1]
        return (last.percent, last.current_operation) == (20, "a long table")

    deadline = time.monotonic() + TIMEOUT
    while not written():
        assert time.monotonic() < deadline, "the trailing update was never written"
        time.sleep(0.02)
    assert len([e for e in store.history(job_id) if isinstance(e, ProcessingProgress)]) == 2


def test_submit_refuses_bad_publish_fields_at_the_call_site() -> None:
    from tasks.demo import walk_document

    with pytest.raises(InvalidEvent) as err:
        walk_document.submit(owner="")
    assert str(err.value) == "owner must be 1 to 200 characters of text, got ''"
    with pytest.raises(InvalidEvent) as err:
        walk_document.submit(parent="not a job id")
    assert str(err.value) == "parent must be a job id, got 'not a job id'"
