"""The ``progress-bridge`` command as a subprocess against the real server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from progress_bridge.events import (
    ProcessingCancelled,
    ProcessingCompleted,
    ProcessingFailed,
    ProcessingProgress,
    ProcessingStarted,
)
from progress_bridge.store import EventStore
from progress_bridge.store.embedded import EmbeddedValkey, free_port
from tests.conftest import TIMEOUT

CLI = [sys.executable, "-m", "progress_bridge.cli"]


def run_env(redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PROGRESS_REDIS_URL")}
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def tail(
    redis_url: str | None, job_id: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "tail", job_id, *extra],
        env={**run_env(redis_url), **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_tail_of_an_unknown_job_exits_2_with_a_message(redis_url: str) -> None:
    done = tail(redis_url, "job-never-seen")
    assert done.returncode == 2 and done.stdout == ""
    assert "unknown job 'job-never-seen'" in done.stderr


def test_tail_prints_the_history_as_json_lines_and_exits_0_on_completed(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    written = [
        store.append(ProcessingStarted(job_id=job_id)),
        store.append(ProcessingProgress(job_id=job_id, percent=50)),
        store.append(ProcessingCompleted(job_id=job_id, result_summary="ok")),
    ]
    done = tail(redis_url, job_id)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(d["id"], d["type"]) for d in lines] == [(e.id, e.type) for e in written]


@pytest.mark.parametrize(
    "terminal",
    [
        ProcessingFailed(job_id="x", error_type="E", error_message="boom"),
        ProcessingCancelled(job_id="x", reason="revoked"),
    ],
)
def test_tail_follows_live_events_and_exits_1_on_failed_or_cancelled(
    redis_url: str, store: EventStore, job_id: str, terminal: Any
) -> None:
    # Start tail on a running job, then append while it follows.
    first = store.append(ProcessingStarted(job_id=job_id))
    proc = subprocess.Popen(
        [*CLI, "tail", job_id],
        env=run_env(redis_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["id"] == first.id  # history first
        live = store.append(ProcessingProgress(job_id=job_id, percent=30))
        assert json.loads(proc.stdout.readline())["id"] == live.id
        end = store.append(terminal.model_copy(update={"job_id": job_id}))
        line = json.loads(proc.stdout.readline())
        assert (line["id"], line["type"], line["epoch"]) == (end.id, end.type, end.epoch)
        assert proc.wait(timeout=TIMEOUT) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def test_dev_runs_the_stack_and_a_demo_job_and_stops_everything_on_sigterm(tmp_path: Path) -> None:
    # Embedded server (no REDIS_URL), a prefork worker, the web app, Flower and the PDF demo job
    # at 20 times its pace (about 3 s).
    web_port, flower_port = free_port(), free_port()
    data = {"PROGRESS_DATA_DIR": str(tmp_path)}  # the stack file, as a second terminal finds it
    proc = subprocess.Popen(
        [
            *CLI,
            "dev",
            "--demo",
            "--demo-speed",
            "20",
            "--concurrency",
            "1",
            "--port",
            str(web_port),
            "--flower-port",
            str(flower_port),
        ],
        env={**run_env(None), **data},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The children log to the same stderr: drain it as it comes, or they block on a full pipe.
    assert proc.stdout is not None and proc.stderr is not None
    err_lines: list[str] = []
    drain = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)
    drain.start()
    try:
        job_id = proc.stdout.readline().strip()
        link = proc.stdout.readline().strip()  # the page, signed in on the job (tests/e2e)
        assert link.startswith(f"http://127.0.0.1:{web_port}/#job={job_id}&token="), link
        found = [line for line in list(err_lines) if "embedded valkey-server at " in line]
        assert job_id and found, "".join(err_lines)[-2000:]
        url = found[0].rsplit(" ", 1)[1].strip()
        page_lines = [line for line in list(err_lines) if "[dev] page, REST API and /ws" in line]
        assert page_lines  # said once the web app answers, before the demo job's id
        # In a second terminal (no REDIS_URL, no secret), tail finds the stack and watches the
        # demo job to its end; token mints a token the stack's web app accepts.
        done = tail(None, job_id, env=data)
        assert done.returncode == 0, done.stderr
        types = [json.loads(line)["type"] for line in done.stdout.splitlines()]
        assert types[0] == "processing_queued" and types[-1] == "processing_completed"
        assert "zone_completed" in types
        minted = subprocess.run(
            [*CLI, "token", "--user", "demo"],
            env={**run_env(None), **data},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert minted.returncode == 0, minted.stderr
        headers = {"Authorization": f"Bearer {minted.stdout.strip()}"}
        snap = httpx.get(f"http://127.0.0.1:{web_port}/api/jobs/{job_id}", headers=headers)
        assert (snap.status_code, snap.json()["status"]) == (200, "completed")
        # The web app (bridge included) and Flower answer on the ports given; Flower's API is
        # usable as started (no 401 on loopback) and knows the demo job by its own name.
        flower = f"http://127.0.0.1:{flower_port}"
        for url in (f"http://127.0.0.1:{web_port}/readyz", f"{flower}/", f"{flower}/api/tasks"):
            deadline = time.monotonic() + 3 * TIMEOUT
            while not _answers(url):
                assert time.monotonic() < deadline, f"{url} never answered"
                time.sleep(0.1)
        deadline = time.monotonic() + 3 * TIMEOUT
        while (
            info := httpx.get(f"{flower}/api/task/info/{job_id}", timeout=1)
        ).status_code != 200 or (info.json().get("state") != "SUCCESS"):
            assert time.monotonic() < deadline, f"Flower never showed {job_id} SUCCESS: {info.text}"
            time.sleep(0.1)
        assert info.json()["name"] == "tasks.pdf_tasks.process_pdf"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=3 * TIMEOUT)
        drain.join(timeout=TIMEOUT)
    err = "".join(err_lines)
    assert proc.returncode == 0, err
    assert "[dev] stopping" in err
    # The stack file is gone with the stack (the demo's upload and result stay, as any job's).
    assert not (tmp_path / "dev-stack.json").exists()
    assert {p.name for p in tmp_path.iterdir()} <= {"uploads", "results", "previews"}
    # Everything it started has stopped: the ports are free again.
    for port in (web_port, flower_port):
        with socket.socket() as sock:
            # Nothing listens there any more (SO_REUSEADDR: closed connections' TIME_WAIT
            # entries on the port are not a process).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()


def test_dev_refuses_a_taken_port_before_starting_anything(tmp_path: Path) -> None:
    # Another process holds the web port: dev says which and how to choose another, at once.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [*CLI, "dev", "--port", str(port), "--flower-port", "0"],
            env={**run_env(None), "PROGRESS_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 (the web app) is taken" in done.stderr
    assert "--port" in done.stderr
    assert "[dev] started" not in done.stderr  # nothing was started
    assert list(tmp_path.iterdir()) == []


def test_devs_embedded_server_is_out_of_reach_of_a_terminals_ctrl_c() -> None:
    # A terminal signals its foreground process group: dev's own server must not get it, so
    # dev can stop the worker first (it may be writing a task's last events) and then it.
    with EmbeddedValkey() as shared, EmbeddedValkey(own_session=True) as own:
        assert shared._proc is not None and own._proc is not None
        assert os.getpgid(shared._proc.pid) == os.getpgid(0)
        assert os.getpgid(own._proc.pid) != os.getpgid(0)


def test_worker_without_a_redis_url_refuses_to_start_with_a_clear_message() -> None:
    env = {
        k: v
        for k, v in run_env(None).items()
        if k not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
    }
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-P", "solo"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 1
    assert "REDIS_URL (or PROGRESS_REDIS_URL" in done.stderr
