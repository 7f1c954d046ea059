"""A user uploads a PDF on the page, watches it live to the end, and downloads an export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import JOB_WAIT_MS, Stack, unique_user
from tests.e2e.pages import (
    assert_finished_page_matches_history,
    screenshot,
    sign_in,
    upload,
    zone_statuses,
)
from tests.pdf_samples import expected_zone_count, many_pages_pdf

#: Above the canvas threshold (40): the job fans out as a chord and the page shows the children's
#: zones aggregated on the one job. Big enough to be watched mid-run (progress writes are now
#: paced apart from zone events, which made a 60-page job twice as fast: 1.2-1.5 s).
PAGES = 120

pytestmark = pytest.mark.browser


def test_upload_shows_live_progress_then_completion_and_the_json_export_downloads(
    stack: Stack, new_page: object
) -> None:
    document = many_pages_pdf(PAGES)
    zones = expected_zone_count(PAGES)

    # Sign in and upload with the file picker: the page switches to the new job.
    page = new_page()  # type: ignore[operator]
    user = unique_user("alice")
    sign_in(page, user)
    job_id = upload(page, "quarterly-report.pdf", document)
    status = page.get_by_test_id("job-status")

    # Live: the job runs and some of its zones are done. (How far the bar is, is not checked
    # here: see test_page_progress.py.)
    expect(status).to_have_text("Running", timeout=JOB_WAIT_MS)
    page.wait_for_function(
        """() => document.querySelector('rect.zone[data-status="completed"]') !== null""",
        timeout=JOB_WAIT_MS,
    )
    mid = zone_statuses(page)
    bar = page.get_by_role("progressbar", name="Job progress").evaluate("bar => bar.value")
    export_enabled = page.get_by_role("button", name="Export JSON").is_enabled()
    cancel_enabled = page.get_by_role("button", name="Cancel job").is_enabled()
    screenshot(page, "job-mid-run")
    # Still running after all that was read and the picture taken: it all shows the job mid-run.
    expect(status).to_have_text("Running", timeout=1)
    assert 0 < list(mid.values()).count("completed") < zones
    assert bar > 0
    assert not export_enabled, "exports are offered before the job has completed"
    assert cancel_enabled, "a running job cannot be cancelled"
    expect(page.get_by_test_id("current-operation")).not_to_be_empty()
    # Progress is announced to screen readers.
    expect(page.get_by_test_id("progress-text")).to_have_attribute("aria-live", "polite")
    # The job is in the user's list too.
    expect(page.get_by_role("navigation", name="Your jobs").get_by_role("button")).to_have_count(1)

    # The end: complete zone map, 100 %, a log that matches the job's history.
    assert_finished_page_matches_history(page, stack.store, job_id, expected_zones=zones)
    summary = f"quarterly-report.pdf: {PAGES} pages, {zones} zones"
    expect(page.get_by_text(summary, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Cancel job")).to_be_disabled()

    # Export as JSON: its progress arrives as events, then a download button appears.
    page.get_by_role("button", name="Export JSON").click()
    download_button = page.get_by_role("button", name="Download ")
    expect(download_button).to_be_visible(timeout=JOB_WAIT_MS)
    screenshot(page, "job-completed")
    with page.expect_download() as info:
        download_button.click()
    download = info.value
    assert download.suggested_filename == "quarterly-report.json"
    exported = json.loads(Path(download.path()).read_text())

    # The export is the whole document: every page and every zone the page showed, in order.
    snapshot = stack.store.snapshot(job_id)
    assert snapshot is not None
    assert [e.status for e in snapshot.exports] == ["completed"]
    assert exported["source_name"] == "quarterly-report.pdf"
    assert exported["page_count"] == PAGES
    assert [p["number"] for p in exported["pages"]] == list(range(1, PAGES + 1))
    assert [z["zone_id"] for z in exported["zones"]] == [z.zone_id for z in snapshot.zones]
    assert {z["status"] for z in exported["zones"]} == {"completed"}
    texts = " ".join(z["text"] or "" for z in exported["zones"])
    assert "Section 1" in texts
    assert f"Section {PAGES}" in texts
