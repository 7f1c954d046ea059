"""What Flower shows for a running job: the page's numbers on one line (no I/O)."""

from __future__ import annotations

import pytest

from progress_bridge.capture.celery_state import progress_text


def test_progress_text_reads_like_the_pages_line() -> None:
    meta = {
        "percent": 42.4,
        "zones_completed": 27,
        "zones_total": 64,
        "current_operation": "Extracting text p5-z2",
        "current_zone": "p5-z2",
    }
    assert progress_text(meta) == "42% · 27/64 zones · Extracting text p5-z2"


@pytest.mark.parametrize(
    ("percent", "shown"), [(0.5, "1%"), (2.5, "3%"), (99.49, "99%"), (0, "0%")]
)
def test_progress_text_rounds_half_up_as_the_page_does(percent: float, shown: str) -> None:
    # JavaScript's Math.round, not Python's round-half-to-even (round(2.5) == 2).
    assert progress_text({"percent": percent}).startswith(f"{shown} · ")


def test_progress_text_without_an_operation_names_the_zone_or_nothing() -> None:
    assert progress_text({"percent": 10, "current_zone": "p1-z0"}) == "10% · 0/0 zones · p1-z0"
    assert progress_text({"percent": 10, "zones_completed": 1, "zones_total": 2}) == (
        "10% · 1/2 zones"
    )
