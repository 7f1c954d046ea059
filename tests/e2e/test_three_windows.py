"""The three windows on one job agree: the page, Flower and ``progress-bridge tail``.

The real stack (worker, web app, Chromium) plus a real Flower; the job is the demo's (the real
PDF job on the committed 12-page report, paced as ``dev --demo`` paces it), opened in the browser
through the sign-in link ``dev`` prints. Mid-job, at a moment the job's stream stands still (the
store's position is the same before and after the three reads), the page's progress line,
Flower's task and tail's live view (run in a pseudo-terminal) must show the store's numbers:
percent, zones done/total and the current operation. Then the job is cancelled from the page's
API, and the three agree again: cancelled on the page, REVOKED in Flower and in Celery's result
backend, tail exits 1.

The same moment is what the docs show: the test screenshots it as ``page-mid-job.png``,
``flower-mid-job.png`` and ``tail-mid-job.png`` (tail's screen rendered as HTML in Chromium),
into the test's temporary folder, or into ``docs/screenshots/`` with
``PROGRESS_UPDATE_SCREENSHOTS=1`` (so an ordinary run leaves the checkout clean).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, states
from celery.result import AsyncResult
from playwright.sync_api import expect

import tasks.pdf_tasks as pdf_tasks
from progress_bridge.bridge.tokens import TokenAuthority
from progress_bridge.cli.dev import demo_link
from progress_bridge.events.snapshot import JobSnapshot
from tasks.demo import submit_pdf_demo
from tests.bridge_server import settings_env
from tests.celery_apps import configured
from tests.conftest import TIMEOUT
from tests.e2e.conftest import JOB_WAIT_MS, ROOT, WAIT_MS, Stack, unique_user
from tests.e2e.terminal import TailInTerminal, terminal_html
from tests.flower import FlowerProcess, parse_flower_text

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "docs" / "screenshots"
#: The page's progress line while a job runs: "42% · 27/64 zones so far · 5 pages analysed …".
_PAGE_LINE = re.compile(r"^(?P<percent>\d+)% · (?P<done>\d+)/(?P<total>\d+) zones")
_STOPPED_LINE = re.compile(r"^Stopped at (?P<percent>\d+)% · (?P<done>\d+)/(?P<total>\d+) zones")
#: Zones done before the mid-job comparison, at :data:`SPEED` times the demo's pace (about 1.3 s
#: per zone on its first page: time to read three windows, or screenshot them, while it stands).
MID_JOB_ZONES = 3
SPEED = 0.75

Numbers = tuple[int, int, int, str | None]


@dataclass
class Views:
    store: Numbers
    page: Numbers | None
    flower: Numbers | None
    tail: Numbers | None

    def agree(self) -> bool:
        return self.page == self.flower == self.tail == self.store


def backend_state(stack: Stack, job_id: str) -> str:
    """The job's state in Celery's result backend (the stack's), read by an app of its own."""
    url = stack.settings.redis_url
    app = Celery(broker=url, backend=url)
    try:
        return str(AsyncResult(job_id, app=app).state)
    finally:
        app.close()


def numbers_of(snap: JobSnapshot) -> Numbers:
    # The page rounds with JavaScript's Math.round (half up).
    return (
        math.floor(snap.percent + 0.5),
        snap.zones_completed,
        snap.zones_total,
        snap.current_operation,
    )


@pytest.fixture
def demo_app() -> Iterator[None]:
    """``submit_pdf_demo`` points ``tasks.app`` at the stack's broker: put it back after."""
    with configured(pdf_tasks.app):
        yield


def read_views(page: Any, flower: FlowerProcess, tail: TailInTerminal, stack: Stack, job_id: str):  # type: ignore[no-untyped-def]
    """The three views, read while the job's stream stands still, with the store's numbers; None
    when the stream moved during the reads."""
    before = stack.store.snapshot(job_id)
    line = page.get_by_test_id("progress-text").inner_text()
    operation = page.get_by_test_id("current-operation").inner_text().strip() or None
    match = _PAGE_LINE.match(line) or _STOPPED_LINE.match(line)
    on_page = (
        (int(match["percent"]), int(match["done"]), int(match["total"]), operation)
        if match
        else None
    )
    info = flower.task(job_id)
    in_flower = parse_flower_text(info.get("result")) if info else None
    shown = tail.progress()
    in_tail = (math.floor(shown[0] + 0.5), shown[1], shown[2], shown[3]) if shown else None
    after = stack.store.snapshot(job_id)
    if before is None or after is None or before.last_id != after.last_id:
        return None
    return Views(numbers_of(after), on_page, in_flower, in_tail)


def wait_until_they_agree(
    page: Any, flower: FlowerProcess, tail: TailInTerminal, stack: Stack, job_id: str
) -> Views:
    """Poll until, at a still moment, the three views show the store's numbers (a deadline)."""
    deadline = time.monotonic() + TIMEOUT
    last: Views | None = None
    while time.monotonic() < deadline:
        views = read_views(page, flower, tail, stack, job_id)
        if views is not None:
            last = views
            if views.agree():
                return views
        time.sleep(0.05)
    raise AssertionError(
        f"the page, Flower and tail never agreed with the store: {last}; "
        f"tail's screen ends {tail.lines()[-2:]!r}"
    )


def screenshots_folder(tmp_path: Path) -> Path:
    """``docs/screenshots`` when asked to update them, else the test's own folder."""
    return SCREENSHOTS if os.environ.get("PROGRESS_UPDATE_SCREENSHOTS") == "1" else tmp_path


def screenshot_still_moment(
    page: Any,
    shots: Any,
    flower: FlowerProcess,
    tail: TailInTerminal,
    stack: Stack,
    job_id: str,
    folder: Path,
) -> bool:
    """Screenshot the three windows at a moment they agree; False (and nothing kept) when the
    job's stream moved while they were taken."""
    views = wait_until_they_agree(page, flower, tail, stack, job_id)
    position = stack.store.snapshot(job_id).last_id  # type: ignore[union-attr]
    screen = tail.lines()[-8:]
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / f".{name}.tmp.png" for name in ("page", "flower", "tail")}
    page.screenshot(path=str(files["page"]))
    shots.set_viewport_size({"width": 1280, "height": 640})
    shots.goto(f"{flower.base_url}/task/{job_id}")
    percent, done = views.store[0], views.store[1]
    expect(shots.get_by_text(f"{percent}% · {done}/")).to_be_visible()
    shots.screenshot(path=str(files["flower"]))
    shots.set_viewport_size({"width": 1000, "height": 220})
    shots.set_content(terminal_html(screen, f"$ progress-bridge tail {job_id}"))
    shots.screenshot(path=str(files["tail"]), full_page=True)
    if stack.store.snapshot(job_id).last_id != position:  # type: ignore[union-attr]
        for path in files.values():
            path.unlink()
        return False
    for name, path in files.items():
        path.replace(folder / f"{name}-mid-job.png")
    return True


def test_page_flower_and_tail_show_the_same_numbers_mid_job_and_after_a_cancel(
    browser: Any, stack: Stack, flower: FlowerProcess, demo_app: None, tmp_path: Path
) -> None:
    # The demo job as `dev --demo` submits it, owned by a fresh user, at the demo's own pace.
    owner = unique_user("demo")
    job_id = submit_pdf_demo(stack.settings, owner=owner, speed=SPEED)
    secret = stack.settings.token_secret.get_secret_value()  # type: ignore[union-attr]
    link = demo_link(f"{stack.base_url}/", job_id, owner, secret, stack.settings)

    # The three windows: the page opened through dev's link (signed in, on the job), Flower,
    # and tail in a terminal of its own.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    tail = TailInTerminal(job_id, settings_env(stack.settings))
    try:
        page = context.new_page()
        page.goto(link)
        expect(page.get_by_text(f"Signed in as {owner}")).to_be_visible()
        expect(page).to_have_url(f"{stack.base_url}/#job={job_id}")  # the token is gone
        expect(page.get_by_test_id("job-status")).to_have_text("Running", timeout=JOB_WAIT_MS)

        # Mid-job, at a still moment, all three show the store's numbers.
        deadline = time.monotonic() + 3 * TIMEOUT
        while (
            snap := stack.store.snapshot(job_id)
        ) is None or snap.zones_completed < MID_JOB_ZONES:
            assert time.monotonic() < deadline, f"the job did not get going: {snap}"
            time.sleep(0.1)
        mid = wait_until_they_agree(page, flower, tail, stack, job_id)
        percent, done, total, operation = mid.store
        assert 0 < percent < 100 and MID_JOB_ZONES <= done < total and operation
        assert flower.task(job_id)["state"] == "PROGRESS"  # type: ignore[index]

        # The docs' screenshots of one such moment (taken again if the job moved meanwhile).
        shots = context.new_page()
        deadline = time.monotonic() + 3 * TIMEOUT
        folder = screenshots_folder(tmp_path)
        while not screenshot_still_moment(page, shots, flower, tail, stack, job_id, folder):
            assert time.monotonic() < deadline, "the job never stood still for the screenshots"
        for name in ("page", "flower", "tail"):
            assert (folder / f"{name}-mid-job.png").stat().st_size > 0

        # Cancel, as the page's Cancel button does.
        with stack.api(owner) as api:
            assert api.delete(f"/api/jobs/{job_id}").status_code == 202
        expect(page.get_by_test_id("job-status")).to_have_text("Cancelled", timeout=JOB_WAIT_MS)
        assert tail.wait(TIMEOUT) == 1  # tail's exit status for a cancelled job
        flower.wait_task(job_id, lambda t: t["state"] == states.REVOKED, "REVOKED")
        assert backend_state(stack, job_id) == states.REVOKED
        # Where it stopped: the same numbers in all three.
        final = wait_until_they_agree(page, flower, tail, stack, job_id)
        assert final.store[1] >= done
        assert "cancelled" in "\n".join(tail.lines())
    finally:
        tail.close()
        context.close()


def test_an_expired_sign_in_link_asks_to_sign_in_again(browser: Any, stack: Stack) -> None:
    # A link as dev prints it, opened after its token expired.
    owner = unique_user("late")
    expired = TokenAuthority(stack.settings).mint(owner, ttl_s=-60)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.goto(f"{stack.base_url}/#job=pdf-gone&token={expired}")
        # Not signed in with it: the sign-in form says why, with the link's user filled in, and
        # the token is gone from the address bar all the same.
        expect(page.get_by_role("status")).to_contain_text("The sign-in link has expired")
        expect(page.get_by_label("User name")).to_have_value(owner)
        expect(page).to_have_url(f"{stack.base_url}/#job=pdf-gone")
    finally:
        context.close()
