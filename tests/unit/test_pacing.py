"""The demo's pacing: each page takes at least its time, spread over its zones (no I/O: a fake
clock stands in for time)."""

from __future__ import annotations

import pytest

from progress_bridge.events import PageInfo, ZoneInfo
from tasks.pacing import POLL_S, PacedSink
from tasks.pdf.sink import RecordingSink


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _zones(page: int, n: int) -> list[ZoneInfo]:
    return [ZoneInfo(zone_id=f"p{page}-z{i}", index=page * 10 + i, page=page) for i in range(n)]


def test_each_zone_ends_at_its_share_of_the_pages_time_and_calls_pass_through() -> None:
    clock, inner = FakeClock(), RecordingSink()
    sink = PacedSink(inner, 2.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    sink.declare_zones(_zones(1, 4), [PageInfo(number=1, width=10, height=10)])
    for i in range(4):
        sink.set_progress(operation=f"Extracting text p1-z{i}")
        sink.zone_processing(f"p1-z{i}", tool="t")
        sink.zone_completed(f"p1-z{i}", tool="t", confidence=0.9)
        assert clock.now == pytest.approx(
            start + 0.5 * (i + 1)
        )  # a quarter of the page's 2 s per zone
    assert all(s <= POLL_S for s in clock.sleeps)  # short naps: a cancel is seen quickly
    assert [c.method for c in inner.calls][:3] == [
        "declare_zones",
        "set_progress",
        "zone_processing",
    ]
    assert inner.calls[3].args["confidence"] == 0.9


def test_a_page_without_zones_takes_its_time_and_a_stop_ends_the_wait() -> None:
    clock = FakeClock()
    stops = iter([False, False, True])
    sink = PacedSink(RecordingSink(), 1.0, lambda: next(stops), clock=clock, sleep=clock.sleep)
    start = clock.now
    sink.declare_zones([], [PageInfo(number=1, width=10, height=10)])
    # Asked three times; the third says stop: two naps, then the wait ends early.
    assert clock.now == pytest.approx(start + 2 * POLL_S)
