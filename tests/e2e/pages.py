"""The job page as the browser tests use it: sign in, upload, read the log and the zone map,
and the checks of a finished job page against the job's history in the store.

Selectors are the page's accessible names where it has them (labels, roles, button names) and
its ``data-testid`` / ``data-*`` hooks for what has none (the log's stream ids, zone states).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from progress_bridge.events import TERMINAL_TYPES
from progress_bridge.events.ids import parse_stream_id
from progress_bridge.store import EventStore
from tests.e2e.conftest import ARTIFACTS, JOB_WAIT_MS

__all__ = [
    "assert_finished_page_matches_history",
    "job_id_of",
    "log_lines",
    "screenshot",
    "sign_in",
    "upload",
    "zone_statuses",
]

_JOB_HASH = re.compile(r"#job=([^&]+)$")
_STREAM_ID = re.compile(r"^\d+-\d+$")
_SNAPSHOT_KEY = re.compile(r"^snapshot-(?P<epoch>.+)-(?P<last_id>\d+-\d+)$")
#: Events whose log line names what it reports (a zone, the job's lifecycle): each such line
#: appears once. Other lines may legitimately read alike (two pages declaring 4 zones each).
UNIQUE_TEXT = {
    "processing_queued",
    "processing_started",
    "zone_processing",
    "zone_completed",
    "processing_completed",
    "processing_failed",
    "processing_cancelled",
}
#: Events the bridge may coalesce (latest wins) for a lagging connection: not every one of them
#: has to reach the page; every other event must, exactly once.
COALESCED = {"processing_progress", "export_progress"}


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG under ``test-artifacts/e2e/``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def job_id_of(page: Any) -> str:
    match = _JOB_HASH.search(page.url)
    assert match, f"no job in the page's URL {page.url!r}"
    return match.group(1)


def sign_in(page: Any, user: str) -> None:
    """The development sign-in stand-in: a user name in, the job page out."""
    page.get_by_label("User name").fill(user)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {user}")).to_be_visible()


def upload(page: Any, name: str, data: bytes) -> str:
    """Choose a PDF with the file picker; returns the id of the job the page then shows."""
    page.get_by_label("Drop a PDF here, or choose a file").set_input_files(
        {"name": name, "mimeType": "application/pdf", "buffer": data}
    )
    expect(page).to_have_url(_JOB_HASH)
    return job_id_of(page)


def log_lines(page: Any) -> list[tuple[str, str]]:
    """The event log as ``(key, text)`` pairs, time left out. The key is the event's stream id,
    or ``snapshot-<epoch>-<last_id>`` for a line the page wrote from a snapshot."""
    rows: list[list[str]] = (
        page.get_by_test_id("event-log")
        .locator("li")
        .evaluate_all(
            """items => items.map(li => {
                const time = li.querySelector('time');
                const text = li.textContent.slice(time ? time.textContent.length : 0).trim();
                return [li.dataset.key, text];
            })"""
        )
    )
    return [(key, text) for key, text in rows]


def zone_statuses(page: Any) -> dict[str, str]:
    """``zone_id -> status`` of every zone box drawn in the zone map."""
    rows: list[list[str]] = page.locator("rect.zone").evaluate_all(
        "rects => rects.map(r => [r.dataset.zone, r.dataset.status])"
    )
    return {zone: status for zone, status in rows}


def wait_until_completed(page: Any) -> None:
    expect(page.get_by_test_id("job-status")).to_have_text("Completed", timeout=JOB_WAIT_MS)


def assert_finished_page_matches_history(
    page: Any, store: EventStore, job_id: str, *, expected_zones: int
) -> list[tuple[str, str]]:
    """The completed job's page against its history: every zone box drawn and completed, 100 %,
    and an event log that holds each event once, in stream order, with no gap from where it
    starts. Returns the log."""
    wait_until_completed(page)
    snapshot = store.snapshot(job_id)
    assert snapshot is not None
    assert snapshot.status == "completed"
    assert snapshot.zones_total == expected_zones
    n = expected_zones

    # Progress: the bar, its text (aria-live) and the counters agree with the store.
    expect(page.get_by_role("progressbar", name="Job progress")).to_have_attribute("value", "100")
    expect(page.get_by_test_id("progress-text")).to_contain_text(f"100% · {n}/{n} zones")

    # The zone map: one box per zone of the job, every one completed.
    zones = zone_statuses(page)
    assert set(zones) == {z.zone_id for z in snapshot.zones}
    assert len(zones) == n
    assert Counter(zones.values()) == {"completed": n}
    pages = {z.page for z in snapshot.zones}
    for number in pages:
        on_page = sum(1 for z in snapshot.zones if z.page == number)
        label = f"Page {number}: {on_page} of {on_page} zones done"
        expect(page.get_by_role("group", name=label, exact=True)).to_be_visible()
    expect(page.get_by_text(f"Zones as a table ({n})")).to_be_visible()

    # The log against the job's history.
    log = log_lines(page)
    keys = [key for key, _ in log]
    assert len(keys) == len(set(keys)), f"repeated log keys: {_repeats(keys)}"
    history = store.history(job_id)
    by_id = {e.id: e for e in history}
    # Zone and lifecycle lines name what they report: none may appear twice.
    texts = [text for key, text in log if key in by_id and by_id[key].type in UNIQUE_TEXT]
    assert len(texts) == len(set(texts)), f"repeated log lines: {_repeats(texts)}"
    event_ids = [key for key in keys if _STREAM_ID.match(key)]
    unknown = [key for key in event_ids if key not in by_id]
    assert not unknown, f"log lines for events that are not in the job's history: {unknown}"
    assert event_ids == sorted(event_ids, key=parse_stream_id), "log lines out of stream order"
    # Gap-free from where the log starts: from the snapshot the page loaded (its first line, when
    # it subscribed afresh), else from the first event it logged (when the job list was already
    # following the job, the page says "Watching from" and goes on from the client's state).
    assert event_ids, f"no event in the log: {log[:3]}"
    first = _SNAPSHOT_KEY.match(keys[0])
    start = parse_stream_id(first["last_id"]) if first else parse_stream_id(event_ids[0])
    logged = set(event_ids)
    missing = [
        (e.id, e.type)
        for e in history
        if e.type not in COALESCED
        and parse_stream_id(e.id or "") >= start
        and e.id not in logged
        and not (first and e.id == first["last_id"])
    ]
    assert not missing, f"events missing from the log after where it starts: {missing}"
    terminal = [e for e in history if e.type in TERMINAL_TYPES]
    assert [e.type for e in terminal] == ["processing_completed"]
    return log


def _repeats(values: list[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]
