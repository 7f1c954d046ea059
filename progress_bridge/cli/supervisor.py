"""A small process supervisor for ``dev``: start children, stop them all when one exits or on
a signal."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from .output import err

__all__ = ["STOP_TIMEOUT_S", "Supervisor"]

#: Seconds a child gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 10.0


@dataclass
class Supervisor:
    """Start child processes; stop them all (last started first) when any exits or on a signal."""

    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self, name: str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        # Own session: a terminal's Ctrl-C reaches us only, and we stop children in order.
        # Their output goes to our stderr: our stdout carries only what we print (a demo
        # job's id, for scripts), not a worker's banner.
        popen.setdefault("stdout", sys.stderr)
        proc = subprocess.Popen(list(argv), start_new_session=True, **popen)
        self.children.append((name, proc))
        err(f"[dev] started {name} (pid {proc.pid})")
        return proc

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        self._stop.set()

    def wait(self) -> int:
        """Block until a signal or a child exits; return 0 for a signal, 1 if a child died."""
        while not self._stop.wait(0.2):
            for name, proc in self.children:
                if proc.poll() is not None:
                    err(f"[dev] {name} exited with status {proc.returncode}; stopping")
                    return 1
        return 0

    def running(self) -> bool:
        """No stop asked for, and every child still running."""
        return not self._stop.is_set() and all(p.poll() is None for _, p in self.children)

    def stop_all(self) -> None:
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    err(f"[dev] {name} did not stop in {STOP_TIMEOUT_S:g} s; killing it")
                    proc.kill()
                    proc.wait()
        self.children.clear()
