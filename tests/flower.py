"""A real Celery Flower for tests: ``celery -A tasks flower`` as a child process.

``FlowerProcess(broker_url)`` starts Flower on a free loopback port with its API open
(``FLOWER_UNAUTHENTICATED_API=true``, as ``progress-bridge dev`` runs it on loopback) and waits
until it is *listening to events*, not just serving HTTP: Flower learns about tasks from Celery
events only, and an event sent before its receiver is bound is lost to it. So readiness is a
probe event (a ``task-sent`` for a made-up id, sent again until Flower's API knows that id).

``task(task_id)`` reads ``/api/task/info/<id>`` (None while Flower has not seen it), ``tasks()``
``/api/tasks``; ``wait_task(task_id, predicate)`` polls until the predicate holds, with a deadline.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from celery import Celery

from progress_bridge.store.embedded import free_port
from tests.conftest import TIMEOUT

__all__ = ["FLOWER_TEXT", "FlowerProcess", "parse_flower_text"]

ROOT = Path(__file__).resolve().parent.parent
#: What a running job's ``result`` reads in Flower: ``42% · 27/64 zones · Extracting text p5-z2``.
FLOWER_TEXT = re.compile(
    r"^(?P<percent>\d+)% · (?P<done>\d+)/(?P<total>\d+) zones(?: · (?P<op>.*))?$"
)


def parse_flower_text(text: Any) -> tuple[int, int, int, str | None] | None:
    """``(percent, done, total, operation)`` from a running job's Flower result, else None."""
    match = FLOWER_TEXT.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    return int(match["percent"]), int(match["done"]), int(match["total"]), match["op"]


class FlowerProcess:
    """``celery -A tasks flower`` against ``broker_url``, stopped on exit."""

    def __init__(self, broker_url: str, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.broker_url = broker_url
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(base_url=self.base_url, timeout=TIMEOUT)

    def __enter__(self) -> FlowerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        env = {
            **os.environ,
            "REDIS_URL": self.broker_url,
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_RESULT_BACKEND": self.broker_url,
            "FLOWER_UNAUTHENTICATED_API": "true",
            **self._env,
        }
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "celery", "-A", "tasks", "flower"]
        cmd += ["--address=127.0.0.1", f"--port={self.port}", "--logging=warning"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=log)
        self._wait_listening()

    def _wait_listening(self) -> None:
        probe = f"flower-probe-{uuid.uuid4().hex[:8]}"
        app = Celery(broker=self.broker_url)
        deadline = time.monotonic() + 3 * TIMEOUT
        try:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"flower exited at start:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"flower never saw a probe event:\n{self.log_tail()}")
                try:
                    with app.events.default_dispatcher(hostname="flower-probe") as dispatcher:
                        dispatcher.send("task-sent", uuid=probe, name="probe", retry=False)
                    if self.task(probe) is not None:
                        return
                except (httpx.HTTPError, OSError):
                    pass  # not listening yet
                time.sleep(0.2)  # polling for readiness with a deadline
        finally:
            app.close()

    def task(self, task_id: str) -> dict[str, Any] | None:
        """Flower's view of one task (``/api/task/info/<id>``), or None while it knows none."""
        response = self._http.get(f"/api/task/info/{task_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        info: dict[str, Any] = response.json()
        return info

    def tasks(self, **params: Any) -> dict[str, dict[str, Any]]:
        """``/api/tasks`` (the task list): id → task."""
        response = self._http.get("/api/tasks", params=params)
        response.raise_for_status()
        listed: dict[str, dict[str, Any]] = response.json()
        return listed

    def wait_task(
        self, task_id: str, predicate: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        """Poll Flower until its view of ``task_id`` satisfies ``predicate``; return that view."""
        deadline = time.monotonic() + TIMEOUT
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = self.task(task_id)
            if last is not None and predicate(last):
                return last
            time.sleep(0.05)
        raise AssertionError(f"Flower never showed {what} for {task_id}; last seen: {last}")

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        self._http.close()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
