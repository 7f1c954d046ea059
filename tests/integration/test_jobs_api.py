"""The PDF jobs REST API on a real uvicorn server (loopback, free port) with a real worker.

The demo app (``web.app.create_app``: bridge routes + jobs routes) runs in a thread; jobs run on
the in-process threads worker of :mod:`tests.integration.pdf_worker`; requests go over HTTP
with httpx. Uploads are generated PDFs.
"""

from __future__ import annotations

import io
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image

from progress_bridge.bridge.tokens import TokenAuthority
from progress_bridge.config import Settings
from progress_bridge.events import ProcessingQueued
from progress_bridge.store import EventStore
from progress_bridge.store.embedded import free_port
from tasks.pdf_tasks import JobFiles
from tests.conftest import TIMEOUT
from tests.integration.pdf_worker import gate_parts, pdf_worker, terminals, wait_for
from tests.pdf_samples import (
    encrypted_pdf,
    many_pages_pdf,
    mixed_pdf,
    not_a_pdf,
    truncated_pdf,
)
from web.app import create_app
from web.uploads import cleanup_expired

MAX_UPLOAD = 300_000
MAX_PAGES = 12
SECRET = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def api_settings(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        redis_url=redis_url,
        token_secret=SECRET,
        data_dir=tmp_path_factory.mktemp("api-data"),
        max_upload_bytes=MAX_UPLOAD,
        max_pages=MAX_PAGES,
        canvas_page_threshold=4,
        pages_per_subtask=3,
        cancel_poll_s=0.02,
        progress_max_rate_hz=50,
        bridge_read_block_ms=200,
        upload_retention_s=3600,
        cleanup_interval_s=0.1,
    )


@pytest.fixture(scope="module")
def base_url(redis_url: str, api_settings: Settings) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(api_settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="jobs-api", daemon=True)
    with pdf_worker(redis_url, api_settings):
        thread.start()
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _healthy(url), "the API server to start")
        try:
            yield url
        finally:
            server.should_exit = True
            thread.join(TIMEOUT)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def files(api_settings: Settings) -> JobFiles:
    return JobFiles(api_settings.data_dir)


def client(base_url: str, user: str, **claims: Any) -> httpx.Client:
    token = TokenAuthority(Settings(token_secret=SECRET)).mint(user, **claims)
    return httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )


@pytest.fixture
def alice(base_url: str) -> Iterator[httpx.Client]:
    with client(base_url, "alice") as c:
        yield c


@pytest.fixture
def bob(base_url: str) -> Iterator[httpx.Client]:
    with client(base_url, "bob") as c:
        yield c


def upload(c: httpx.Client, data: bytes, name: str = "report.pdf") -> httpx.Response:
    return c.post("/api/jobs", files={"file": (name, data, "application/pdf")})


def finished(c: httpx.Client, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        snap: dict[str, Any] = c.get(f"/api/jobs/{job_id}").json()
        return snap if snap["status"] in ("completed", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(ended, f"job {job_id} to end")
    return result


def test_dev_token_endpoint_mints_a_working_token(base_url: str) -> None:
    user = f"carol-{secrets.token_hex(4)}"  # a user no other test has jobs for
    token = httpx.post(f"{base_url}/api/token", json={"user": user}).json()["token"]
    listed = httpx.get(f"{base_url}/api/jobs", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    assert listed.json() == {"jobs": []}
    assert httpx.post(f"{base_url}/api/token", json={"user": "../x"}).status_code == 422


async def test_dev_token_endpoint_is_refused_in_production(api_settings: Settings) -> None:
    app = create_app(api_settings.model_copy(update={"production": True}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
        answer = await c.post("/api/token", json={"user": "mallory"})
    assert answer.status_code == 403
    assert answer.headers["x-error-code"] == "disabled"


def test_every_route_needs_a_token(base_url: str) -> None:
    assert httpx.get(f"{base_url}/api/jobs").status_code == 401
    answer = httpx.post(f"{base_url}/api/jobs", files={"file": ("a.pdf", mixed_pdf())})
    assert answer.status_code == 401
    assert httpx.delete(f"{base_url}/api/jobs/pdf-x").status_code == 401


def test_upload_starts_a_job_that_completes(
    alice: httpx.Client, files: JobFiles, store: EventStore
) -> None:
    # Upload; the answer names the job, the sanitised name and the page count.
    answer = upload(alice, mixed_pdf())
    assert answer.status_code == 202, answer.text
    body = answer.json()
    job_id = body["job_id"]
    assert (body["display_name"], body["pages"]) == ("report.pdf", 1)
    # The bridge's snapshot route shows it owned by the uploader; it runs to completion.
    snap = finished(alice, job_id)
    assert (snap["status"], snap["owner"], snap["document_id"]) == (
        "completed",
        "alice",
        "report.pdf",
    )
    assert snap["zones_completed"] == snap["zones_total"] >= 3
    # Stored under the generated name only.
    assert files.upload(job_id).read_bytes() == mixed_pdf()
    assert [e.type for e in terminals(store.history(job_id))] == ["processing_completed"]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (not_a_pdf(), 415, "not_a_pdf"),
        (b"", 415, "not_a_pdf"),
        (truncated_pdf(), 422, "truncated_pdf"),
        (encrypted_pdf(), 422, "encrypted_pdf"),
        (many_pages_pdf(MAX_PAGES + 1), 422, "too_many_pages"),
    ],
    ids=["zip-named-pdf", "empty", "truncated", "encrypted", "over-page-limit"],
)
def test_bad_uploads_are_refused_with_a_reason_and_leave_no_file(
    alice: httpx.Client, files: JobFiles, data: bytes, status: int, code: str
) -> None:
    before = set(files.uploads.glob("*")) if files.uploads.exists() else set()
    answer = upload(alice, data)
    assert answer.status_code == status, answer.text
    assert answer.headers["x-error-code"] == code
    assert answer.json()["detail"].endswith(".")
    assert set(files.uploads.glob("*")) == before


def test_oversize_uploads_are_refused_with_413(alice: httpx.Client, files: JobFiles) -> None:
    big = mixed_pdf() + b"%" + os.urandom(MAX_UPLOAD)
    before = set(files.uploads.glob("*"))
    # With a Content-Length: refused before the body is read.
    answer = upload(alice, big)
    assert answer.status_code == 413
    assert answer.headers["x-error-code"] == "too_large"

    # Without one (chunked): counted as it arrives and refused at the limit.
    boundary = "b" + secrets.token_hex(8)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for i in range(0, len(big), 65_536):
            yield big[i : i + 65_536]
        yield f"\r\n--{boundary}--\r\n".encode()

    answer = alice.post(
        "/api/jobs",
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status_code == 413
    assert set(files.uploads.glob("*")) == before


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../../etc/passwd.pdf", "passwd.pdf"),
        ("..\\..\\windows\\evil.pdf", "evil.pdf"),
        ("/abs/path/x.pdf", "x.pdf"),
        ("inv\u202eoice\u200b.pdf", "invoice.pdf"),
        ("....", "document.pdf"),
    ],
)
def test_a_file_name_with_path_tricks_is_only_a_display_name(
    alice: httpx.Client, files: JobFiles, name: str, shown: str
) -> None:
    answer = upload(alice, mixed_pdf(), name=name)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert answer.json()["display_name"] == shown
    # The only file written is uploads/<job id>.pdf; nothing lands outside the data dir.
    assert files.upload(job_id).exists()
    root = files.root.resolve()
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root)
    assert not any("passwd" in p.name or "evil" in p.name for p in root.rglob("*"))
    finished(alice, job_id)


def test_another_users_job_is_forbidden_and_an_unknown_one_not_found(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    job_id = upload(alice, mixed_pdf()).json()["job_id"]
    finished(alice, job_id)
    assert bob.get(f"/api/jobs/{job_id}").status_code == 403
    assert bob.delete(f"/api/jobs/{job_id}").status_code == 403
    assert bob.post(f"/api/jobs/{job_id}/exports", json={"format": "json"}).status_code == 403
    assert bob.get(f"/api/jobs/{job_id}/exports/exp-x").status_code == 403
    assert alice.get("/api/jobs/pdf-nope").status_code == 404
    assert alice.delete("/api/jobs/pdf-nope").status_code == 404
    # An admin may act on anyone's job.
    with client(str(alice.base_url), "root", admin=True) as admin:
        assert admin.get(f"/api/jobs/{job_id}").status_code == 200


def test_the_list_shows_only_the_callers_jobs_newest_first_without_canvas_children(
    base_url: str,
) -> None:
    names = [f"{name}-{secrets.token_hex(4)}" for name in ("dora", "erin")]
    with client(base_url, names[0]) as dora, client(base_url, names[1]) as erin:
        first = upload(dora, mixed_pdf()).json()["job_id"]
        time.sleep(0.01)
        second = upload(dora, many_pages_pdf(7)).json()["job_id"]  # fans out into 3 parts
        theirs = upload(erin, mixed_pdf()).json()["job_id"]
        finished(dora, second)
        listed = [j["job_id"] for j in dora.get("/api/jobs").json()["jobs"]]
        assert listed == [second, first]
        assert [j["job_id"] for j in erin.get("/api/jobs").json()["jobs"]] == [theirs]


def test_cancel_ends_the_job_once_and_a_second_cancel_conflicts(
    alice: httpx.Client, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, reached = gate_parts(monkeypatch)
    try:
        # A 10-page document fans out; both worker threads hold a part mid-page.
        job_id = upload(alice, many_pages_pdf(10)).json()["job_id"]
        for _ in range(2):
            assert reached.acquire(timeout=TIMEOUT)
        answer = alice.delete(f"/api/jobs/{job_id}")
        assert answer.status_code == 202
        assert answer.json() == {"job_id": job_id, "status": "cancelled"}
        assert alice.get(f"/api/jobs/{job_id}").json()["status"] == "cancelled"
        again = alice.delete(f"/api/jobs/{job_id}")
        assert again.status_code == 409
        assert again.headers["x-error-code"] == "already_ended"
    finally:
        gate.set()
    # Every part ends cancelled; the job keeps exactly one terminal event.
    for first in (1, 4, 7, 10):
        child = f"{job_id}-p{first}"
        wait_for(lambda c=child: terminals(store.history(c)), f"{child} to end")  # type: ignore[misc]
        assert [e.type for e in terminals(store.history(child))] == ["processing_cancelled"]
    time.sleep(0.2)
    assert [e.type for e in terminals(store.history(job_id))] == ["processing_cancelled"]


def test_a_completed_job_exports_and_downloads_as_an_attachment(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    job_id = upload(alice, mixed_pdf(), name="Q3 report.pdf").json()["job_id"]
    finished(alice, job_id)
    answer = alice.post(f"/api/jobs/{job_id}/exports", json={"format": "markdown"})
    assert answer.status_code == 202, answer.text
    export_id = answer.json()["export_id"]

    def done() -> bool:
        exports = alice.get(f"/api/jobs/{job_id}").json()["exports"]
        return any(e["export_id"] == export_id and e["status"] == "completed" for e in exports)

    wait_for(done, "the export to complete")
    download = alice.get(f"/api/jobs/{job_id}/exports/{export_id}")
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment;")
    assert 'filename="Q3_report.md"' in download.headers["content-disposition"]
    assert download.headers["content-type"].startswith("text/markdown")
    assert "## Page 1" in download.text
    assert bob.get(f"/api/jobs/{job_id}/exports/{export_id}").status_code == 403
    assert alice.get(f"/api/jobs/{job_id}/exports/exp-unknown").status_code == 404
    assert alice.post(f"/api/jobs/{job_id}/exports", json={"format": "pdf"}).status_code == 422


def test_exporting_a_job_that_did_not_complete_conflicts(alice: httpx.Client) -> None:
    job_id = upload(alice, many_pages_pdf(2)).json()["job_id"]
    alice.delete(f"/api/jobs/{job_id}")  # cancelled, or completed first: both end the job
    snap = finished(alice, job_id)
    answer = alice.post(f"/api/jobs/{job_id}/exports", json={"format": "csv"})
    assert answer.status_code == (202 if snap["status"] == "completed" else 409)


def test_the_app_sweeps_expired_uploads_but_keeps_those_of_running_jobs(
    base_url: str, files: JobFiles, store: EventStore
) -> None:
    # Two uploads two hours old: one of a job that has ended long ago (its snapshot expired),
    # one of a job still queued. The app's sweep (every 0.1 s here) removes only the first.
    old = time.time() - 7200
    expired, running = files.upload("pdf-expired"), files.upload("pdf-still-queued")
    store.append(ProcessingQueued(job_id="pdf-still-queued", task_name="t", owner="alice"))
    for path in (expired, running):
        path.write_bytes(b"%PDF-1.4")
        os.utime(path, (old, old))
    wait_for(lambda: not expired.exists(), "the sweep to remove the expired upload")
    assert running.exists()


def test_retention_removes_expired_files_but_keeps_running_jobs(tmp_path: Path) -> None:
    files = JobFiles(tmp_path)
    old = time.time() - 7200
    paths = {
        "old_upload": files.upload("pdf-old"),
        "running_upload": files.upload("pdf-running"),
        "new_upload": files.upload("pdf-new"),
        "old_result": files.result("pdf-old"),
        "old_export": files.export("exp-old", "csv"),
        "partial": files.uploads / "pdf-cut.part",
        "old_previews": files.previews_dir("pdf-old") / "page-00001.jpg",
        "running_previews": files.previews_dir("pdf-running") / "page-00001.jpg",
    }
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"%PDF-1.4")
    for key in ("old_upload", "running_upload", "old_result", "old_export", "partial"):
        os.utime(paths[key], (old, old))
    for key in ("old_previews", "running_previews"):  # a job's previews are one directory
        os.utime(paths[key].parent, (old, old))
    removed = cleanup_expired(files, 3600, keep=lambda job_id: job_id == "pdf-running")
    expired = {paths[k] for k in ("old_upload", "old_result", "old_export", "partial")}
    assert set(removed) == expired | {files.previews_dir("pdf-old")}
    assert not paths["old_previews"].exists()
    assert paths["running_previews"].exists()
    assert paths["running_upload"].exists()
    assert paths["new_upload"].exists()


def test_page_images_and_zone_content_are_served_to_the_owner_only(
    alice: httpx.Client, bob: httpx.Client, base_url: str
) -> None:
    # A 7-page document fans out into three parts (pages 1-3, 4-6, 7); each part writes its pages.
    job_id = upload(alice, many_pages_pdf(7)).json()["job_id"]
    snap = finished(alice, job_id)
    assert snap["status"] == "completed"

    # Every page has its image: a JPEG 320 px wide, cacheable for good.
    for number in range(1, 8):
        answer = alice.get(f"/api/jobs/{job_id}/pages/{number}/image")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/jpeg"
        assert "immutable" in answer.headers["cache-control"]
        assert Image.open(io.BytesIO(answer.content)).size == (320, 453)
    missing = alice.get(f"/api/jobs/{job_id}/pages/8/image")
    assert (missing.status_code, missing.headers["x-error-code"]) == (404, "not_rendered")
    assert missing.headers["cache-control"] == "no-store"
    assert alice.get(f"/api/jobs/{job_id}/pages/0/image").status_code == 422

    # A zone's whole content, with what the event stream already said about it.
    zones = {z["zone_id"]: z for z in snap["zones"]}
    text = alice.get(f"/api/jobs/{job_id}/zones/p5-z2")
    assert text.status_code == 200, text.text
    body = text.json()
    assert (body["page"], body["kind"], body["status"]) == (5, "text", "completed")
    assert body["text"].startswith("Page 5 begins. ")
    # The whole paragraph, where the event carried a one-line summary of it.
    summary = zones["p5-z2"]["summary"]
    assert summary.endswith("…")
    assert " ".join(body["text"].split()).startswith(summary[:-1])
    assert len(body["text"]) > len(summary)
    assert body["tool"] == zones["p5-z2"]["processing_tool"]
    assert body["confidence"] == zones["p5-z2"]["confidence"]
    table = alice.get(f"/api/jobs/{job_id}/zones/p6-z3").json()
    assert (table["kind"], table["rows"][0]) == ("table", ["0.0", "0.1", "0.2"])
    for unknown in ("p6-z9", "nonsense"):
        answer = alice.get(f"/api/jobs/{job_id}/zones/{unknown}")
        assert (answer.status_code, answer.headers["x-error-code"]) == (404, "not_found")

    # Bob gets nothing of it; an admin may look; an unknown job is not found.
    assert bob.get(f"/api/jobs/{job_id}/pages/1/image").status_code == 403
    assert bob.get(f"/api/jobs/{job_id}/zones/p5-z2").status_code == 403
    assert "Page 5" not in bob.get(f"/api/jobs/{job_id}/zones/p5-z2").text
    with client(base_url, "root", admin=True) as admin:
        assert admin.get(f"/api/jobs/{job_id}/pages/1/image").status_code == 200
        assert admin.get(f"/api/jobs/{job_id}/zones/p5-z2").status_code == 200
    # A token that grants watching the job does not show its content (as for its exports).
    with client(base_url, "carol", jobs=[job_id]) as carol:
        assert carol.get(f"/api/jobs/{job_id}").status_code == 200
        assert carol.get(f"/api/jobs/{job_id}/pages/1/image").status_code == 403
        assert carol.get(f"/api/jobs/{job_id}/zones/p5-z2").status_code == 403
    assert alice.get("/api/jobs/pdf-nope/pages/1/image").status_code == 404
    assert alice.get("/api/jobs/pdf-nope/zones/p1-z1").status_code == 404
    assert httpx.get(f"{base_url}/api/jobs/{job_id}/pages/1/image").status_code == 401
    assert httpx.get(f"{base_url}/api/jobs/{job_id}/zones/p5-z2").status_code == 401


def test_while_a_page_runs_its_image_is_there_and_its_zones_follow_when_it_finishes(
    alice: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, reached = gate_parts(monkeypatch)
    try:
        # Held right after the first zone of page 1 completed.
        job_id = upload(alice, many_pages_pdf(2)).json()["job_id"]
        assert reached.acquire(timeout=TIMEOUT)
        snap = alice.get(f"/api/jobs/{job_id}").json()
        assert snap["status"] == "started"
        assert [p["number"] for p in snap["pages"]] == [1]
        # The declared page has its image already; the page after it has none yet.
        assert alice.get(f"/api/jobs/{job_id}/pages/1/image").status_code == 200
        assert alice.get(f"/api/jobs/{job_id}/pages/2/image").status_code == 404
        # The completed zone's content follows its page's end: not ready, and not cached.
        early = alice.get(f"/api/jobs/{job_id}/zones/p1-z1")
        assert (early.status_code, early.headers["x-error-code"]) == (404, "not_ready")
        assert early.headers["cache-control"] == "no-store"
    finally:
        gate.set()
    # Once page 1 has finished (the job runs on), the zone is served.
    ready = wait_for(
        lambda: (r := alice.get(f"/api/jobs/{job_id}/zones/p1-z1")).status_code == 200 and r,
        "zone p1-z1 to be served",
    )
    assert ready.json()["text"] == "Section 1"
    finished(alice, job_id)
