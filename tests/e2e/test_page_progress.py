"""What the page says about a running job split into parts: the bar only rises and never reads
100 % before the job has ended, and the current operation names the work being done."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import JOB_WAIT_MS, Stack, unique_user
from tests.e2e.pages import sign_in, upload
from tests.pdf_samples import many_pages_pdf

#: Just above the canvas threshold (40 pages): five parts of up to 10 pages.
PAGES = 45
#: Samples the job view every 50 ms in the page itself (Playwright's own polling is too coarse to
#: see every state the page passes through).
SAMPLER_JS = """() => {
    window.__samples = [];
    setInterval(() => {
        const get = (id) => document.querySelector(`[data-testid="${id}"]`);
        const bar = document.querySelector("progress");
        if (!bar || !get("job-status")) return;
        window.__samples.push({
            status: get("job-status").textContent,
            value: bar.value,
            text: get("progress-text").textContent,
            operation: get("current-operation").textContent,
            done: document.querySelectorAll('rect.zone[data-status="completed"]').length,
        });
    }, 50);
}"""

pytestmark = pytest.mark.browser


def test_progress_of_a_split_job_only_rises_and_reaches_100_only_at_the_end(
    stack: Stack, new_page: Any
) -> None:
    # Upload a document that fans out into parts and sample the page until the job ends.
    page = new_page()
    sign_in(page, unique_user("dana"))
    page.evaluate(SAMPLER_JS)
    upload(page, "split.pdf", many_pages_pdf(PAGES))
    expect(page.get_by_test_id("job-status")).to_have_text("Completed", timeout=JOB_WAIT_MS)
    samples: list[dict[str, Any]] = page.evaluate("window.__samples")
    running = [s for s in samples if s["status"] == "Running" and s["done"] > 0]
    assert len(running) > 5, "too few samples while the job ran"

    # The bar only rises, and stays below 100 % while the job runs.
    values = [s["value"] for s in running]
    assert values == sorted(values), f"the bar went back: {values}"
    assert max(values) < 100, f"100 % before the end: {[s['text'] for s in running][:5]}"
    # While zones are being processed, the page says what is being done.
    assert not [s for s in running if s["operation"] in ("", "Waiting for the worker…")]
