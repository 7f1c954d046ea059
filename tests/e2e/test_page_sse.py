"""Behind a proxy that refuses WebSocket upgrades, the page falls back to Server-Sent Events by
itself: a real job (real worker, real bridge, Chromium) runs to completion on the page over SSE,
each event once and none missing. When the proxy lets WebSockets through again, the page goes back
to a WebSocket at its next probe and resumes from where SSE left it.

The probe runs every 30 s (the client's default ``wsProbeInterval``); the test jumps the page's
clock ahead (Playwright's clock, installed before the page loads, otherwise runs at real speed)
instead of waiting for it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import JOB_WAIT_MS, WAIT_MS, Stack, unique_user
from tests.e2e.pages import (
    assert_finished_page_matches_history,
    log_lines,
    screenshot,
    sign_in,
    upload,
)
from tests.e2e.proxy import UpgradeRefusingProxy
from tests.pdf_samples import expected_zone_count, many_pages_pdf

#: A job that runs for a few seconds, long enough to be watched live over SSE.
PAGES = 60
#: Past the client's probe interval (30 s).
PROBE_JUMP_MS = 31_000

pytestmark = pytest.mark.browser


def record_websockets(page: Any) -> list[dict[str, Any]]:
    """Every WebSocket the page opens (or tries to), with the JSON frames it sent and got."""
    sockets: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        entry: dict[str, Any] = {"url": ws.url, "sent": [], "received": []}
        sockets.append(entry)

        def frame(kind: str, payload: str | bytes) -> None:
            if isinstance(payload, str):
                entry[kind].append(json.loads(payload))

        ws.on("framesent", lambda payload: frame("sent", payload))
        ws.on("framereceived", lambda payload: frame("received", payload))

    page.on("websocket", on_socket)
    return sockets


def test_behind_a_proxy_refusing_websockets_the_job_runs_over_sse_then_the_page_goes_back(
    stack: Stack, browser: Any
) -> None:
    zones = expected_zone_count(PAGES)
    with UpgradeRefusingProxy(stack.web.port) as proxy:
        proxy.refuse_upgrades = True
        context = browser.new_context(
            base_url=proxy.base_url, viewport={"width": 1280, "height": 900}
        )
        try:
            context.set_default_timeout(WAIT_MS)
            context.clock.install()
            page = context.new_page()
            sockets = record_websockets(page)
            streams: list[str] = []
            page.on("request", lambda r: streams.append(r.url) if "/sse?" in r.url else None)
            page.goto("/")

            # Signed in, the page connects: its WebSocket handshakes are refused, and it falls
            # back to SSE by itself, and says so.
            sign_in(page, unique_user("erin"))
            banner = page.locator("[role=status][data-state]")
            expect(banner).to_have_attribute("data-transport", "sse")
            expect(banner).to_have_attribute("data-state", "open")
            expect(banner).to_contain_text("Server-Sent Events")
            assert proxy.upgrades_refused >= 3

            # A real job, watched live over SSE to the end: the complete picture, each event once.
            job_id = upload(page, "behind-a-proxy.pdf", many_pages_pdf(PAGES))
            expect(page.get_by_test_id("job-status")).to_have_text("Running", timeout=JOB_WAIT_MS)
            page.wait_for_function(
                "() => document.querySelector('rect.zone[data-status=\"completed\"]') !== null",
                timeout=JOB_WAIT_MS,
            )
            screenshot(page, "job-over-sse")
            log = assert_finished_page_matches_history(
                page, stack.store, job_id, expected_zones=zones
            )
            screenshot(page, "job-completed-over-sse")
            assert any(f"job_id={job_id}" in url for url in streams), streams
            assert not [s for s in sockets if s["received"]], "a WebSocket got through the proxy"
            expect(banner).to_have_attribute("data-transport", "sse")

            # The proxy lets WebSockets through again: at the next probe the page moves back.
            proxy.refuse_upgrades = False
            context.clock.fast_forward(PROBE_JUMP_MS)
            expect(banner).to_have_attribute("data-transport", "websocket")
            expect(banner).to_have_attribute("data-state", "open")
            expect(banner).to_be_hidden()
            assert proxy.upgrades_passed >= 1

            # The WebSocket resumed the job from the last event the page had rendered (its
            # terminal one): the bridge honoured the position, and nothing came twice.
            final = stack.store.snapshot(job_id)
            assert final is not None
            answers = _wait_for_answer(page, sockets, job_id)
            assert all(a["recovered"] is True for a in answers), answers
            resumed = [
                f
                for s in sockets
                for f in s["sent"]
                if f.get("op") == "subscribe" and f.get("job_id") == job_id
            ]
            assert resumed
            assert resumed[-1]["epoch"] == final.epoch
            assert resumed[-1]["last_id"] == final.last_id
            assert log_lines(page) == log
        finally:
            context.close()


def _wait_for_answer(page: Any, sockets: list[dict[str, Any]], job_id: str) -> list[Any]:
    """The ``subscribed`` answers for the job that reached the page over a WebSocket."""

    def answers() -> list[Any]:
        return [
            f
            for s in sockets
            for f in s["received"]
            if f.get("op") == "subscribed" and f.get("job_id") == job_id
        ]

    expect(page.get_by_test_id("job-status")).to_have_text("Completed")
    deadline_polls = int(WAIT_MS / 50)
    for _ in range(deadline_polls):
        if answers():
            return answers()
        page.wait_for_timeout(50)  # Playwright's own event pump: frames arrive while it waits
    raise AssertionError(f"no subscribed answer for {job_id} over a WebSocket")
