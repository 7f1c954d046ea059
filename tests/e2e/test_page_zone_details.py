"""What was extracted, on the page: each page of the zone map drawn over the worker's image of it,
and a zone's details (kind, tool, confidence and its real text or table) on a click or Enter."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import JOB_WAIT_MS, Stack, unique_user
from tests.e2e.pages import screenshot, sign_in, upload
from tests.pdf_samples import many_pages_pdf

#: Above the canvas threshold (40 pages): five parts of up to 10 pages, each drawing its pages.
PAGES = 45
#: The size the browser decodes a page image to, and where it sits against the page's zones.
IMAGE_JS = """(figure) => {
    const image = figure.querySelector("image.page-image");
    const layers = [...image.parentElement.children].map((e) => e.getAttribute("class"));
    return new Promise((resolve, reject) => {
        const decoded = new Image();
        decoded.onload = () => resolve({
            href: image.getAttribute("href"),
            size: [decoded.naturalWidth, decoded.naturalHeight],
            below_zones:
                layers.indexOf("page-image") < layers.findIndex((c) => c.startsWith("zone ")),
        });
        decoded.onerror = reject;
        decoded.src = image.getAttribute("href");
    });
}"""

pytestmark = pytest.mark.browser


def focused_zone(page: Any) -> str | None:
    zone: str | None = page.evaluate("document.activeElement?.dataset?.zone ?? null")
    return zone


def test_pages_show_their_images_and_a_zone_shows_its_real_text(
    stack: Stack, new_page: Any
) -> None:
    user = unique_user("erin")
    page = new_page()
    sign_in(page, user)
    with page.expect_response(lambda r: r.url.endswith("/pages/1/image")) as first_image:
        job_id = upload(page, "annual-report.pdf", many_pages_pdf(PAGES))
    # The page's image came from the web app with the job's authorization, cacheable for good.
    answer = first_image.value
    assert answer.status == 200
    assert answer.headers["content-type"] == "image/jpeg"
    assert "immutable" in answer.headers["cache-control"]

    # Page 1 is drawn over its image: a real JPEG of the page, under the zone boxes.
    page_one = page.get_by_test_id("page-1")
    expect(page_one).to_have_attribute("data-image", "shown", timeout=JOB_WAIT_MS)
    image = page_one.evaluate(IMAGE_JS)
    assert image["href"].startswith("blob:")
    assert image["size"] == [320, 453]
    assert image["below_zones"]

    # A click on a completed zone shows its kind, tool, confidence and its whole, real text.
    paragraph = page.locator('rect.zone[data-zone="p1-z2"]')
    expect(paragraph).to_have_attribute("data-status", "completed", timeout=JOB_WAIT_MS)
    paragraph.click()
    details = page.get_by_role("dialog", name="Zone p1-z2 (text)")
    expect(details).to_be_visible()
    expect(details.get_by_test_id("zone-status")).to_have_text("done")
    expect(details).to_contain_text("pdfplumber.text")
    expect(details).to_contain_text("%")
    text = details.get_by_test_id("zone-text")
    expect(text).to_contain_text("Page 1 begins. Zones are detected on every", timeout=JOB_WAIT_MS)
    # The whole paragraph (the event carried a summary cut at 120 characters).
    assert len(text.inner_text()) > 150
    expect(details).to_be_focused()
    screenshot(page, "zone-details")

    # Escape closes the details; focus goes back to the zone.
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert focused_zone(page) == "p1-z2"

    # From the keyboard: a page's zones are one tab stop, the arrows move, Enter opens.
    page.keyboard.press("ArrowLeft")
    assert focused_zone(page) == "p1-z1"
    page.keyboard.press("Enter")
    heading = page.get_by_role("dialog", name="Zone p1-z1 (text)")
    expect(heading.get_by_test_id("zone-text")).to_have_text("Section 1", timeout=JOB_WAIT_MS)
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    # A table of page 42, which another part of the split job processed, once the job is done.
    expect(page.get_by_test_id("job-status")).to_have_text("Completed", timeout=JOB_WAIT_MS)
    page.get_by_test_id("page-42").scroll_into_view_if_needed()
    expect(page.get_by_test_id("page-42")).to_have_attribute("data-image", "shown")
    table_zone = page.locator('rect.zone[data-zone="p42-z3"]')
    table_zone.focus()
    page.keyboard.press("Enter")
    table = page.get_by_role("dialog", name="Zone p42-z3 (table)").get_by_test_id("zone-rows")
    expect(table.locator("thead th")).to_have_text(["0.0", "0.1", "0.2"])
    expect(table.locator("tbody tr")).to_have_count(3)

    # Another user gets neither the images nor the zones of this job.
    with stack.api(unique_user("mallory")) as other:
        assert other.get(f"/api/jobs/{job_id}/pages/1/image").status_code == 403
        assert other.get(f"/api/jobs/{job_id}/zones/p1-z2").status_code == 403
