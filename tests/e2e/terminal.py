"""``progress-bridge tail`` as a person sees it: run in a pseudo-terminal, its screen rebuilt.

:class:`TailInTerminal` runs ``progress-bridge tail JOB_ID`` with its stdout on a pty (so it
draws its live view, not JSON lines) and reads what it writes on a thread. :func:`screen_lines`
rebuilds the screen from that output (the live view only uses ``\\r``, ``\\n`` and ``ESC[2K``);
:func:`parse_progress_line` reads the numbers off its last line; :func:`terminal_html` renders
the screen as an HTML ``<pre>`` for a screenshot.
"""

from __future__ import annotations

import contextlib
import html
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["TailInTerminal", "parse_progress_line", "screen_lines", "terminal_html"]

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = 118
_PROGRESS = re.compile(
    r"^\[[█░]+\]\s+(?P<percent>[\d.]+)%\s+ETA (?P<eta>\S+)\s+zones (?P<done>\d+)/(?P<total>\d+)"
    r"(?:\s{2}(?P<op>.+))?$"
)
_CLEAR_LINE = "\x1b[2K"


def screen_lines(output: str) -> list[str]:
    """The lines on screen after ``output``: ``\r`` returns to the line's start (later text
    overwrites), ``ESC[2K`` clears the line, ``\n`` starts a new one (all the live view writes)."""
    lines = [""]
    column = 0
    for part in re.split(r"(\r|\n|\x1b\[2K)", output):
        if part == "\n":
            lines.append("")
            column = 0
        elif part == "\r":
            column = 0
        elif part == _CLEAR_LINE:
            lines[-1] = ""
        elif part:
            line = lines[-1].ljust(column)
            lines[-1] = line[:column] + part + line[column + len(part) :]
            column += len(part)
    return lines


def parse_progress_line(line: str) -> tuple[float, int, int, str | None] | None:
    """``(percent, done, total, operation)`` from the live view's progress line, else None."""
    match = _PROGRESS.match(line.strip())
    if match is None:
        return None
    op = match["op"].strip() if match["op"] else None
    return float(match["percent"]), int(match["done"]), int(match["total"]), op


def terminal_html(lines: list[str], title: str) -> str:
    """A terminal window as HTML (dark, monospace), for a screenshot."""
    body = html.escape("\n".join(lines))
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; background: #e9ecef; font-family: system-ui, sans-serif; }}
.window {{ margin: 16px; border-radius: 8px; overflow: hidden; box-shadow: 0 2px 8px #0004; }}
.bar {{ background: #3b4048; color: #d7dae0; font-size: 13px; padding: 6px 12px; }}
pre {{ margin: 0; padding: 12px 14px; background: #1e2127; color: #d7dae0; min-height: 120px;
       font: 14px/1.45 "DejaVu Sans Mono", monospace; white-space: pre; }}
</style></head><body><div class="window"><div class="bar">{html.escape(title)}</div>
<pre>{body}</pre></div></body></html>"""


class TailInTerminal:
    """``progress-bridge tail JOB_ID`` on a pty, :data:`COLUMNS` wide; stops on :meth:`close`."""

    def __init__(self, job_id: str, env: dict[str, str]) -> None:
        self.job_id = job_id
        master, slave = pty.openpty()
        self._master = master
        full_env = {**os.environ, **env, "COLUMNS": str(COLUMNS), "LINES": "30", "TERM": "xterm"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "progress_bridge.cli", "tail", job_id],
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
        )
        os.close(slave)
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO once the child has closed the pty
                return
            if not data:
                return
            with self._lock:
                self._chunks.append(data)

    def output(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", errors="replace")

    def lines(self) -> list[str]:
        """The screen so far (trailing empty lines left out)."""
        lines = screen_lines(self.output())
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    def progress(self) -> tuple[float, int, int, str | None] | None:
        """The numbers the progress line shows now."""
        lines = self.lines()
        return parse_progress_line(lines[-1]) if lines else None

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self._reader.join(5)
        with contextlib.suppress(OSError):
            os.close(self._master)
