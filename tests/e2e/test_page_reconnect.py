"""The web app (and with it the bridge) is killed mid-job and started again: the page says it is
reconnecting, resumes by replay, and ends with the same complete picture as if nothing happened."""

from __future__ import annotations

import json
from typing import Any

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

#: Long enough that the job is still running after a crash and a restart of the web app.
PAGES = 80

pytestmark = pytest.mark.browser


def record_websockets(page: Any) -> list[dict[str, Any]]:
    """Every WebSocket the page opens, with the JSON frames it sent and received."""
    sockets: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        entry: dict[str, Any] = {"url": ws.url, "sent": [], "received": [], "closed": False}
        sockets.append(entry)

        def frame(kind: str, payload: str | bytes) -> None:
            if isinstance(payload, str):
                entry[kind].append(json.loads(payload))

        ws.on("framesent", lambda payload: frame("sent", payload))
        ws.on("framereceived", lambda payload: frame("received", payload))
        ws.on("close", lambda _ws: entry.update(closed=True))

    page.on("websocket", on_socket)
    return sockets


def test_bridge_killed_mid_job_page_shows_reconnecting_then_recovers_the_complete_job(
    stack: Stack, new_page: Any
) -> None:
    document = many_pages_pdf(PAGES)
    zones = expected_zone_count(PAGES)

    # Sign in, upload, and watch the job until it is visibly under way.
    page = new_page()
    sockets = record_websockets(page)
    sign_in(page, unique_user("carol"))
    job_id = upload(page, "annual-report.pdf", document)
    status = page.get_by_test_id("job-status")
    # The connection banner (role=status, aria-live) is hidden while connected: find it by its
    # state attribute, which a role query would skip while hidden.
    banner = page.locator("[role=status][data-state]")
    expect(status).to_have_text("Running", timeout=JOB_WAIT_MS)
    page.wait_for_function(
        "() => document.querySelectorAll('rect.zone[data-status=\"completed\"]').length > 0",
        timeout=JOB_WAIT_MS,
    )
    expect(banner).to_have_attribute("data-state", "open")
    expect(banner).to_be_hidden()
    before = list(zone_statuses(page).values()).count("completed")
    assert 0 < before < zones

    # Crash the web app (SIGKILL: no close frame) while the worker keeps going.
    port = stack.web.port
    stack.web.kill()
    killed_at = stack.store.snapshot(job_id)
    assert killed_at is not None
    assert killed_at.status == "started", "the job ended before the crash: make it longer"
    expect(banner).to_have_attribute("data-state", "reconnecting")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Reconnecting")
    screenshot(page, "job-reconnecting")

    # Start it again on the same port: the page reconnects by itself.
    stack.web.port = port
    stack.web.start()
    expect(banner).to_have_attribute("data-state", "open", timeout=JOB_WAIT_MS)
    expect(banner).to_be_hidden()
    screenshot(page, "job-after-reconnect")

    # The end: the complete zone map, 100 %, and each event once in the log.
    log = assert_finished_page_matches_history(page, stack.store, job_id, expected_zones=zones)
    screenshot(page, "job-completed-after-reconnect")
    assert not [text for _, text in log if text.startswith("Caught up from a snapshot")], (
        "the page fell back to a snapshot instead of replaying what it missed"
    )

    # On the wire: a second connection resumed the job from the position the page had rendered
    # (epoch and last id), and the bridge replayed from there (recovered).
    job_sockets = [s for s in sockets if _subscribes(s, job_id)]
    assert len(job_sockets) >= 2, f"expected a reconnect, saw {len(job_sockets)} connection(s)"
    resumed = [f for s in job_sockets[1:] for f in _subscribes(s, job_id)]
    assert resumed
    assert all(f.get("epoch") and f.get("last_id") for f in resumed), resumed
    answers = [
        f
        for s in job_sockets[1:]
        for f in s["received"]
        if f.get("op") == "subscribed" and f.get("job_id") == job_id
    ]
    assert answers
    assert all(a["recovered"] is True for a in answers), answers


def _subscribes(socket: dict[str, Any], job_id: str) -> list[dict[str, Any]]:
    return [f for f in socket["sent"] if f.get("op") == "subscribe" and f.get("job_id") == job_id]
