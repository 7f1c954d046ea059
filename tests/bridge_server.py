"""Run a real bridge for tests: uvicorn on a free loopback port, in a thread or a subprocess.

``BridgeServer`` runs the app in a thread of the test process (fast; ``server.bridge`` gives
the :class:`~progress_bridge.bridge.service.Bridge` for white-box checks). ``BridgeProcess`` runs
``progress-bridge serve`` as a child (for kill/restart and multi-bridge tests). Both
are context managers, wait until ``/healthz`` answers, and stop gracefully (clients get 1012).

``bridge_settings(redis_url, **overrides)`` builds test settings with a random per-session token
secret (never a literal in the repo), and ``mint(settings, user, ...)`` a token for them.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from progress_bridge.bridge.auth import STATE_KEY
from progress_bridge.bridge.routes import create_router
from progress_bridge.bridge.server import uvicorn_config
from progress_bridge.bridge.service import Bridge
from progress_bridge.bridge.tokens import TokenAuthority
from progress_bridge.config import Settings
from progress_bridge.store.embedded import free_port

__all__ = [
    "BridgeProcess",
    "BridgeServer",
    "bridge_settings",
    "mint",
    "register_feed_mode",
    "register_redis_mode",
    "settings_env",
    "wait_healthy",
]

READY_TIMEOUT_S = 15.0
#: One random secret per test session, shared by in-thread servers and child processes.
TEST_SECRET = secrets.token_urlsafe(32)
ROOT = Path(__file__).resolve().parent.parent


#: Redis URLs that are not standalone servers → their mode (tests/conftest.py registers them).
_REDIS_MODES: dict[str, str] = {}
_FEED_MODES: dict[str, str] = {}


def register_redis_mode(url: str, mode: str) -> None:
    """Make :func:`bridge_settings` use ``mode`` for ``url`` (a cluster's node, a sentinel)."""
    _REDIS_MODES[url] = mode


def register_feed_mode(url: str, mode: str) -> None:
    """Make :func:`bridge_settings` use the feed design ``mode`` for ``url``."""
    _FEED_MODES[url] = mode


def bridge_settings(redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "redis_mode": _REDIS_MODES.get(redis_url, "standalone"),
        "feed_mode": _FEED_MODES.get(redis_url, "stream"),
        "token_secret": TEST_SECRET,
        "allowed_origins": ["http://allowed.example"],
        "bridge_read_block_ms": 200,
        "bridge_close_grace_s": 2.0,
    }
    values.update(overrides)
    return Settings(**values)


def mint(settings: Settings, user: str, **kwargs: Any) -> str:
    return TokenAuthority(settings).mint(user, **kwargs)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process read ``settings`` back."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if name == "token_secret":
            value = settings.token_secret.get_secret_value() if settings.token_secret else ""
        elif isinstance(value, list):
            value = ",".join(map(str, value))
        elif isinstance(value, bool):
            value = "true" if value else "false"
        env[f"PROGRESS_{name.upper()}"] = str(value)
    return env


def wait_healthy(base_url: str, alive: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"bridge at {base_url} exited during start-up")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"bridge at {base_url} did not become healthy")


class _Urls:
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


class BridgeServer(_Urls):
    """``with BridgeServer(settings) as server: server.ws_url`` — uvicorn in a thread."""

    def __init__(self, settings: Settings, port: int | None = None, **uvicorn_options: Any):
        from fastapi import FastAPI

        self.settings = settings
        self.port = port or free_port()
        router = create_router(settings)
        self.bridge: Bridge = router.bridge  # type: ignore[attr-defined]
        app = FastAPI()
        setattr(app.state, STATE_KEY, self.bridge.authority)
        app.include_router(router)
        options = {"log_level": "warning", **uvicorn_options}
        self.server = uvicorn.Server(
            uvicorn_config(settings, "127.0.0.1", self.port, app=app, **options)
        )
        self._thread: threading.Thread | None = None

    def start(self) -> BridgeServer:
        self._thread = threading.Thread(target=self.server.run, name="bridge-server", daemon=True)
        self._thread.start()
        wait_healthy(self.base_url, self._thread.is_alive)
        return self

    def stop(self) -> None:
        """Graceful shutdown: uvicorn closes WebSockets with 1012, then the lifespan ends."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=READY_TIMEOUT_S)
            self._thread = None

    def __enter__(self) -> BridgeServer:
        return self.start()

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class BridgeProcess(_Urls):
    """``progress-bridge serve`` as a child process on a given (or free) port."""

    def __init__(
        self, settings: Settings, port: int | None = None, *, bare: bool = True, cli: bool = False
    ):
        self.settings = settings
        self.port = port or free_port()
        self.bare = bare
        self.cli = cli  # run the console script instead of ``python -m progress_bridge.cli``
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BridgeProcess:
        env = {**os.environ, **settings_env(self.settings)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        if self.cli:
            cmd = [str(Path(sys.executable).with_name("progress-bridge")), "serve"]
        else:
            cmd = [sys.executable, "-m", "progress_bridge.cli", "serve"]
        cmd += ["--port", str(self.port)]
        cmd += ["--log-level", "warning"] + (["--bare"] if self.bare else [])
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
        wait_healthy(self.base_url, lambda: self.proc is not None and self.proc.poll() is None)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Stop the child (SIGTERM: graceful, SIGKILL: a crash); returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=READY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> int | None:
        return self.stop(signal.SIGKILL)

    def __enter__(self) -> BridgeProcess:
        return self.start()

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
