"""A connection's inbound token bucket (``bridge.core.inbound_rate``): frames take tokens,
answers are charged by size, and strikes count the frames dropped since the client calmed down."""

from __future__ import annotations

from progress_bridge.bridge.core.inbound_rate import ANSWER_BYTES_PER_TOKEN, InboundRate
from progress_bridge.bridge.core.limits import Limits


def test_the_burst_is_taken_then_frames_are_strikes_until_the_bucket_refills() -> None:
    rate = InboundRate(Limits(rate_per_s=10, rate_burst=3), now=0.0)
    assert [rate.take(0.0) for _ in range(5)] == [True, True, True, False, False]
    assert rate.strikes == 2
    assert rate.take(10.0) and rate.strikes == 0  # full again: earlier flooding forgiven


def test_an_answer_costs_a_token_per_answer_bytes_per_token() -> None:
    rate = InboundRate(Limits(rate_per_s=10, rate_burst=3), now=0.0)
    rate.charge_answer(2 * ANSWER_BYTES_PER_TOKEN)
    assert [rate.take(0.0) for _ in range(2)] == [True, False]
