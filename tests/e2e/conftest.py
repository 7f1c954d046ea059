"""The real stack for the browser tests, started once for this package and stopped after it.

* a Redis-protocol server: the session's embedded valkey-server (or ``REDIS_URL``), from
  ``tests/conftest.py``, database :data:`E2E_DB` of it, so that the worker below and other
  tests' workers never take each other's messages from Celery's default queue;
* a Celery worker: ``celery -A tasks worker -P threads -c 1`` as a child process, pointed at
  that server through the same ``PROGRESS_*`` environment as the web app. One thread keeps the
  PDF work on one core, so the browser and the web app keep the other on a 2-core machine, and
  runs a canvas job's parts one after another, so a job lasts long enough to be watched;
* the web app (``progress-bridge serve``: the REST API, the bridge and the built page) under
  uvicorn as a child process on a free loopback port, so a test can SIGKILL it and start it
  again on the same port (:class:`tests.bridge_server.BridgeProcess`);
* the page, built once with ``npm run build:page`` when ``frontend/dist/page`` is missing or
  older than its sources;
* headless Chromium (Debian's ``/usr/bin/chromium``) driven by Python Playwright, one browser
  for the package and a fresh context (fresh ``sessionStorage``) per page;
* for the tests that ask for it (``flower``), Celery Flower on the same broker
  (:class:`tests.flower.FlowerProcess`).

Screenshots go to ``test-artifacts/e2e/`` (git-ignored). Waits are Playwright's ``expect`` with
:data:`WAIT_MS`, derived from the suite's :data:`tests.conftest.TIMEOUT`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis

from progress_bridge.config import Settings
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeProcess, bridge_settings, mint, settings_env
from tests.conftest import TIMEOUT
from tests.flower import FlowerProcess
from tests.missing import missing

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
PAGE_DIST = FRONTEND / "dist" / "page"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = os.environ.get("PB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
#: Playwright waits, in ms: a whole job may take several TIMEOUTs on a loaded 2-core machine.
WAIT_MS = int(TIMEOUT * 1000)
JOB_WAIT_MS = 6 * WAIT_MS
WORKER_READY_S = 3 * TIMEOUT
#: The Redis database the stack uses on the session's server (see :func:`own_database`).
E2E_DB = 13


def _newest_source_mtime() -> float:
    sources = [FRONTEND / "package.json", FRONTEND / "vite.page.config.ts"]
    sources += [p for p in (FRONTEND / "src").rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in sources if p.exists())


def build_page() -> Path:
    """``npm run build:page`` unless ``frontend/dist/page`` is newer than every source file."""
    index = PAGE_DIST / "index.html"
    if index.exists() and index.stat().st_mtime >= _newest_source_mtime():
        return PAGE_DIST
    if not (FRONTEND / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True)
    subprocess.run(["npm", "run", "--silent", "build:page"], cwd=FRONTEND, check=True)
    assert index.exists(), "npm run build:page wrote no index.html"
    return PAGE_DIST


class Worker:
    """``celery -A tasks worker`` as a child process; ready once it logs ``ready.``."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        env = {**os.environ, **settings_env(self.settings)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-P", "threads"]
        cmd += ["-c", "1", "--without-mingle", "--without-gossip", "-l", "info"]
        cmd += ["-n", f"e2e-{uuid.uuid4().hex[:6]}@%h"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=log)
        deadline = time.monotonic() + WORKER_READY_S
        while b" ready." not in self.log_path.read_bytes():
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready in {WORKER_READY_S} s:\n{self.log_tail()}")
            time.sleep(0.05)  # polling a log for a condition, not a synchronisation sleep
        return self

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3 * TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass
class Stack:
    """Everything a browser test talks to."""

    settings: Settings
    web: BridgeProcess
    worker: Worker
    store: EventStore
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.web.base_url

    def token(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = mint(self.settings, user)
        return self.tokens[user]

    def api(self, user: str) -> httpx.Client:
        """An HTTP client of the web app acting as ``user`` (Bearer token)."""
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token(user)}"},
            timeout=TIMEOUT,
        )


def unique_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def own_database(url: str, db: int = E2E_DB) -> str:
    """The same server, database ``db``: the workers started here consume Celery's default
    queue, and must never take the messages of other tests' workers (nor they theirs)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="package")
def page_dist() -> Path:
    return build_page()


@pytest.fixture(scope="package")
def e2e_settings(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return bridge_settings(
        own_database(redis_url),
        data_dir=tmp_path_factory.mktemp("e2e-data"),
        # Everything the page draws comes from events; let more of them through per second.
        progress_max_rate_hz=20.0,
    )


@pytest.fixture(scope="package")
def stack(
    e2e_settings: Settings, page_dist: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    logs = tmp_path_factory.mktemp("e2e-logs")
    worker = Worker(e2e_settings, logs / "worker.log").start()
    web = BridgeProcess(e2e_settings, bare=False, cli=True)
    client = redis.Redis.from_url(e2e_settings.redis_url or "", decode_responses=True)
    try:
        web.start()
        yield Stack(e2e_settings, web, worker, EventStore(client, e2e_settings))
    finally:
        web.stop()
        worker.stop()
        client.close()


@pytest.fixture(scope="package")
def flower(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowerProcess]:
    """Celery Flower on the stack's broker, listening to its events (started when a test asks)."""
    log = tmp_path_factory.mktemp("e2e-flower") / "flower.log"
    with FlowerProcess(stack.settings.redis_url or "", log, env=settings_env(stack.settings)) as f:
        yield f


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, stack: Stack) -> Iterator[Any]:
    """``new_page()`` opens the app in a fresh browser context (its own sessionStorage)."""
    contexts: list[Any] = []

    def open_page() -> Any:
        context = browser.new_context(
            base_url=stack.base_url, accept_downloads=True, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto("/")
        return page

    yield open_page
    for context in contexts:
        context.close()
