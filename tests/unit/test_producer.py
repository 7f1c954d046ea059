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
