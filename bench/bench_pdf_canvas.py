"""PDF jobs through Celery: one task vs. a chord of page ranges, on a real 2-process worker.

    .venv/bin/python bench/bench_pdf_canvas.py                       # 100 pages, prefork -c 2
    .venv/bin/python bench/bench_pdf_canvas.py --pool threads --repeat 3

Each mode starts ``celery -A tasks.pdf_tasks worker -P <pool> -c <workers>`` as a subprocess
against an embedded valkey-server (or ``REDIS_URL``), waits for it to answer a ping, then runs
the same generated document as a job (``tasks.pdf_tasks.process_pdf``, published as the web API
does). *single*: the canvas threshold is above the page count, so one task does every page.
*canvas*: the threshold is 1 page, so the job fans out into ``--pages-per-part`` page ranges.

Figures per run, from the job's own stream: wall time from ``processing_queued`` to the terminal
event (event timestamps, so polling adds nothing), pages/s, zone events/s (``zone_processing`` +
``zone_completed`` that reached the job's stream), and every event in that stream.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from progress_bridge.capture import producer as _producer  # noqa: E402
from progress_bridge.config import Settings  # noqa: E402
from progress_bridge.store import EventStore  # noqa: E402
from progress_bridge.store.embedded import EmbeddedValkey  # noqa: E402
from tasks.pdf_tasks import JobFiles, process_pdf  # noqa: E402
from tests.pdf_samples import many_pages_pdf  # noqa: E402

READY_TIMEOUT_S = 30.0
JOB_TIMEOUT_S = 600.0


@dataclass
class Run:
    mode: str
    pages: int
    zones: int
    zone_events: int
    events: int
    seconds: float
    cpu_seconds: float
    status: str


def _env(redis_url: str, settings: Settings) -> dict[str, str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name in ("data_dir", "canvas_page_threshold", "pages_per_subtask", "max_pages"):
        env[f"PROGRESS_{name.upper()}"] = str(getattr(settings, name))
    return env


def _start_worker(
    redis_url: str, settings: Settings, pool: str, workers: int
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "celery", "-A", "tasks.pdf_tasks", "worker", "-P", pool]
    cmd += ["-c", str(workers), "--without-mingle", "--without-gossip", "-l", "warning"]
    cmd += ["-n", f"bench-{uuid.uuid4().hex[:6]}@%h"]
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(redis_url, settings), stdout=subprocess.DEVNULL)


def _wait_ready(app: Any, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the worker exited during start-up")
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError("the worker did not answer a ping")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of ``root`` and its descendants so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


def run_job(
    store: EventStore, files: JobFiles, data: bytes, pages: int, mode: str, worker: int
) -> Run:
    cpu_before = _tree_cpu_s(worker)
    job_id = f"pdf-{uuid.uuid4().hex}"
    path = files.upload(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    process_pdf.submit(job_id, "bench.pdf", owner="bench", task_id=job_id)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        snap = store.snapshot(job_id)
        if snap is not None and snap.finished:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} did not end")
        time.sleep(0.05)
    time.sleep(0.2)  # let anything still in flight land, so counts are complete
    cpu = _tree_cpu_s(worker) - cpu_before
    history = store.history(job_id)
    start = next(e.ts for e in history if e.type == "processing_queued")
    end = next(e.ts for e in history if e.type.startswith("processing_") and e.type in _ENDS)
    zone_events = sum(e.type in ("zone_processing", "zone_completed") for e in history)
    return Run(
        mode=mode,
        pages=pages,
        zones=snap.zones_total,
        zone_events=zone_events,
        events=len(history),
        seconds=end - start,
        cpu_seconds=cpu,
        status=snap.status,
    )


_ENDS = {"processing_completed", "processing_failed", "processing_cancelled"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (or threads)")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    parser.add_argument("--pages-per-part", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = many_pages_pdf(args.pages)
    url = os.environ.get("REDIS_URL")
    server = None if url else EmbeddedValkey().start()
    redis_url = url or server.url  # type: ignore[union-attr]
    runs: list[Run] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pdf-") as tmp:
            # Modes alternate (a fresh worker each time), so a change in the machine's load
            # hits both alike.
            for _ in range(args.repeat):
                for mode, threshold in (("single", args.pages + 1), ("canvas", 1)):
                    runs.append(_measure(redis_url, Path(tmp), data, args, mode, threshold))
    finally:
        if server is not None:
            server.stop()
    _report(runs, args)


def _measure(
    redis_url: str, tmp: Path, data: bytes, args: argparse.Namespace, mode: str, threshold: int
) -> Run:
    settings = Settings(
        redis_url=redis_url,
        data_dir=tmp,
        canvas_page_threshold=threshold,
        pages_per_subtask=args.pages_per_part,
        max_pages=max(args.pages, 1),
    )
    app = process_pdf.app
    app.conf.update(broker_url=redis_url, result_backend=redis_url, progress_settings=settings)
    _producer._captures.pop(id(app), None)
    store = EventStore.from_url(redis_url, settings)
    proc = _start_worker(redis_url, settings, args.pool, args.workers)
    try:
        _wait_ready(app, proc)
        files = JobFiles(tmp)
        run_job(store, files, data, args.pages, mode, proc.pid)  # warm-up
        return run_job(store, files, data, args.pages, mode, proc.pid)
    finally:
        _stop(proc)
        store.client.close()


def _report(runs: list[Run], args: argparse.Namespace) -> None:
    print(
        f"{args.pages}-page generated document, worker -P {args.pool} -c {args.workers}, "
        f"{args.pages_per_part} pages per part, median of {args.repeat} alternating runs "
        f"(each after a warm-up job), load average {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| mode | status | wall s | pages/s | zone events/s | worker CPU s | pages/CPU-s "
        "| zones | events in job stream |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode in ("single", "canvas"):
        mine = [r for r in runs if r.mode == mode]
        if not mine:
            continue
        wall = statistics.median(r.seconds for r in mine)
        ze = statistics.median(r.zone_events / r.seconds for r in mine)
        cpu = statistics.median(r.cpu_seconds for r in mine)
        print(
            f"| {mode} | {mine[0].status} | {wall:.2f} | {args.pages / wall:.1f} | {ze:.0f} | "
            f"{cpu:.1f} | {args.pages / cpu:.1f} | {mine[0].zones} | {mine[0].events} |"
        )


if __name__ == "__main__":
    main()
