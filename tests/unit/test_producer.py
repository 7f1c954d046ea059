"""Pure parts of the producer: the smoothed ETA and result summaries."""

from __future__ import annotations

from progress_bridge.capture.eta import EtaEstimator
from progress_bridge.capture.signals import summarize_result


def test_eta_follows_a_change_of_pace_without_jumping() -> None:
    eta = EtaEstimator(tau_s=10.0)
    # 1 %/s for 40 s: the estimate settles on the remaining percent at that pace.
    for t in range(41):
        eta.observe(float(t), float(t))
    assert eta.eta_s(40) == 60.0
    # The pace halves: one second later the estimate moves only a little ...
    eta.observe(41.0, 40.5)
    first = eta.eta_s(40.5)
    assert first is not None and 60 < first < 70
    # ... and after a few tau it reflects the new pace (0.5 %/s -> ~2 s per percent).
    for t in range(42, 101):
        eta.observe(float(t), 40.5 + (t - 41) * 0.5)
    settled = eta.eta_s(70.0)
    assert settled is not None and 58 < settled < 62


def test_eta_of_a_bursty_start_is_the_average_pace_not_the_first_burst() -> None:
    # Each percent comes in a burst (a zone done in 10 ms), then a second of nothing: 1 %/s.
    eta = EtaEstimator(tau_s=10.0)
    eta.observe(0.0, 0.0)
    for t in range(5):
        eta.observe(t + 0.99, float(t))
        eta.observe(t + 1.0, float(t + 1))
    estimate = eta.eta_s(5.0)
    assert estimate is not None and 90 < estimate < 100  # about 95 s at 1 %/s, not 1 s


def test_eta_is_unknown_before_any_progress_and_zero_at_the_end() -> None:
    eta = EtaEstimator()
    assert eta.eta_s(0) is None
    eta.observe(0.0, 0.0)
    eta.observe(1.0, 0.0)
    assert eta.eta_s(0) is None
    assert eta.eta_s(100) == 0.0


def test_result_summary_is_short_and_never_the_whole_result() -> None:
    assert summarize_result({"summary": "12 zones", "data": [1] * 1000}) == "12 zones"
    assert summarize_result([1, 2, 3]) == "list of 3 items"
    assert summarize_result(None) is None
    long = summarize_result("x" * 1000)
    assert long is not None and len(long) == 200 and long.endswith("…")


def test_progress_writes_keep_the_full_rate_then_slow_with_the_jobs_age() -> None:
    from progress_bridge.capture.trailing import progress_interval

    # 10 Hz and a 10,000-event history: the full rate for the first 100 s ...
    assert progress_interval(0.1, 5.0, 10_000) == 0.1
    assert progress_interval(0.1, 100.0, 10_000) == 0.1
    # ... then elapsed / 1,000: 0.6 s after ten minutes, 3.6 s after an hour.
    assert progress_interval(0.1, 600.0, 10_000) == 0.6
    assert progress_interval(0.1, 3600.0, 10_000) == 3.6
    # So a day-long job writes well under its history bound.
    t, writes = 0.0, 0
    while t < 86_400:
        t += progress_interval(0.1, t, 10_000)
        writes += 1
    assert writes < 8_000


def test_the_zone_book_keeps_each_started_zones_last_event_in_reading_order() -> None:
    from progress_bridge.capture.zones import ZoneBook
    from progress_bridge.events import PageInfo, ZoneCompleted, ZoneInfo, ZoneProcessing

    book = ZoneBook("j")
    zones = [ZoneInfo(zone_id=z, index=i, page=1) for i, z in enumerate(("b", "a", "c"))]
    book.declare(zones, [PageInfo(number=1, width=1, height=1)])
    started = ZoneProcessing(job_id="j", zone_id="a", zone_index=1, processing_tool="t")
    done = ZoneCompleted(job_id="j", zone_id="b", zone_index=0, processing_tool="t")
    book.started("a", started)
    book.started("b", done)
    book.completed("b", done)
    assert book.last_events() == [done, started]  # by index, "c" never started
    assert [p.number for p in book.pages()] == [1] and book.zones() == zones
