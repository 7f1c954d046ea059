"""The README's run command serves the page: ``scripts/demo`` builds the frontend and runs
``progress-bridge dev --demo``; here the built page and that command (without the installer)
are used as a person would: the link dev prints opens the demo job in Chromium, signed in as its
owner, and the job is watched to its end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from progress_bridge.store.embedded import free_port
from tests.conftest import TIMEOUT
from tests.e2e.conftest import JOB_WAIT_MS, ROOT, WAIT_MS, own_database
from tests.e2e.pages import screenshot

#: Another database than the stack's, so the two stacks' workers never share a queue.
DEMO_DB = 14

pytestmark = pytest.mark.browser


@pytest.fixture
def dev_stack(
    redis_url: str, page_dist: Path, tmp_path: Path
) -> Iterator[tuple[str, str, str, str]]:
    """``progress-bridge dev --demo`` on a free port; yields (page URL, demo job id, the link
    dev printed, owner)."""
    port, owner = free_port(), f"demo-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "REDIS_URL": own_database(redis_url, DEMO_DB),
        "PROGRESS_DATA_DIR": str(tmp_path),
    }
    env.pop("PROGRESS_TOKEN_SECRET", None)  # dev draws one per run, as for a person
    # The demo PDF job at 20 times its pace: about 3 s.
    cmd = [sys.executable, "-m", "progress_bridge.cli", "dev", "--demo", "--demo-speed", "20"]
    cmd += ["--demo-owner", owner, "--pool", "threads", "--concurrency", "1"]
    cmd += ["--port", str(port), "--flower-port", "0"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        job_id = proc.stdout.readline().strip()
        assert job_id, "dev printed no demo job id"
        link = proc.stdout.readline().strip()
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 3 * TIMEOUT
        while True:  # the web app is a child of dev: poll until it answers
            try:
                if httpx.get(f"{url}healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "dev exited"
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.1)
        yield url, job_id, link, owner
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=3 * TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0


def test_the_link_dev_prints_opens_the_demo_job_signed_in_and_it_can_be_watched_to_its_end(
    browser: Any, dev_stack: tuple[str, str, str, str]
) -> None:
    url, job_id, link, owner = dev_stack
    assert link.startswith(f"{url}#job={job_id}&token=")

    # A fresh browser (no session) opens the link: signed in as the demo job's owner, on that
    # job, and the token is gone from the address bar.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.goto(link)
        expect(page).to_have_title("progress-bridge — PDF jobs")
        expect(page.get_by_text(f"Signed in as {owner}")).to_be_visible()
        expect(page).to_have_url(f"{url}#job={job_id}")
        expect(page.get_by_role("heading", name="northwind-annual-report.pdf")).to_be_visible()

        # The demo job is in the user's list; watch it to the end: the real 12-page report.
        jobs = page.get_by_role("navigation", name="Your jobs").get_by_role("button")
        expect(jobs).to_have_count(1)
        expect(page.get_by_test_id("job-status")).to_have_text("Completed", timeout=JOB_WAIT_MS)
        zones = page.locator("rect.zone")
        expect(zones).not_to_have_count(0)
        expect(page.locator('rect.zone:not([data-status="completed"])')).to_have_count(0)
        expect(page.get_by_test_id("progress-text")).to_contain_text("100%")
        expect(page.get_by_test_id("progress-text")).to_contain_text("12 pages")
        screenshot(page, "dev-demo-job")

        # A reload keeps the session (the token now lives in the tab's session, not the URL).
        page.reload()
        expect(page.get_by_text(f"Signed in as {owner}")).to_be_visible()
    finally:
        context.close()
