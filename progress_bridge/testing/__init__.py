"""Testing what your tasks report: pytest fixtures (a ``pytest11`` plugin, loaded by pytest once
progress-bridge is installed) and assertions over a job's events.

::

    from progress_bridge.testing import assert_exactly_one_terminal, assert_zones_completed_in_order

    def test_ocr_reports_every_zone(progress_app, celery_worker, progress_events):
        job = ocr.submit("scan.pdf", owner="alice")
        events = progress_events(job.id, wait=True)
        assert_zones_completed_in_order(events)
        assert_exactly_one_terminal(events, "processing_completed")

See :mod:`.plugin` for the fixtures and :mod:`.checks` for the assertions.
"""

from .checks import (
    assert_exactly_one_terminal,
    assert_lifecycle,
    assert_percent_only_rises,
    assert_zones_completed_in_order,
    terminal_of,
)

__all__ = [
    "assert_exactly_one_terminal",
    "assert_lifecycle",
    "assert_percent_only_rises",
    "assert_zones_completed_in_order",
    "terminal_of",
]
