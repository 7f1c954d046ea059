"""Capture benchmark (not a test): cost of a progress call inside a task, and appends per second.

Run: ``.venv/bin/python bench/bench_capture.py`` (``REDIS_URL`` to use a server; otherwise an
embedded valkey-server is started). Every figure is printed next to a baseline measured in the
same run against the same server, and as a ratio to it:

* a progress call inside a running Celery task (in-process threads worker), coalesced at the
  default 10 Hz, and uncoalesced (every call appends, then waits while the publisher thread sets
  PROGRESS and sends task-progress); baseline: one plain ``XADD`` per call. The same calls on a
  reporter outside Celery (the stream append alone; coalesced: the reporter's own cost).
* appends per second from one process: ``EventStore.append`` one at a time, and
  ``EventStore.append_many`` (pipelined batches); baselines: plain ``XADD`` one at a time and
  pipelined.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import uuid
from typing import Any

import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker

from progress_bridge.capture.producer import Capture
from progress_bridge.capture.reporter import ProgressReporter
from progress_bridge.capture.task import ProgressTask
from progress_bridge.config import Settings
from progress_bridge.events import ProcessingProgress, ZoneCompleted
from progress_bridge.store import EventStore
from progress_bridge.store.embedded import redis_url_or_embedded

PAYLOAD_FIELDS = 9  # roughly what one of our events carries


def make_app(url: str, rate_hz: float) -> Celery:
    app = Celery(f"bench-{uuid.uuid4().hex[:6]}", set_as_current=False)
    app.conf.update(
        broker_url=url,
        result_backend=url,
        progress_settings=Settings(redis_url=url, progress_max_rate_hz=rate_hz),
        worker_send_task_events=True,
        broker_connection_retry_on_startup=True,
    )

    @app.task(base=ProgressTask, bind=True, name="bench.progress")
    def progress(self: ProgressTask, calls: int) -> float:
        self.set_progress(0.0)  # the first write (connection set-up) is not measured
        began = time.perf_counter()
        for i in range(calls):
            self.set_progress(100.0 * i / calls, operation="step")
        elapsed = time.perf_counter() - began
        return elapsed / calls * 1e6

    return app


def task_call_us(url: str, rate_hz: float, calls: int) -> float:
    app = make_app(url, rate_hz)
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False):
        runs = [app.tasks["bench.progress"].delay(calls).get(timeout=300) for _ in range(3)]
    return float(statistics.median(runs))


def reporter_call_us(url: str, settings: Settings, rate_hz: float, calls: int) -> float:
    """A progress call on a reporter outside Celery: the stream append alone, no PROGRESS state."""
    capture = Capture(
        settings.model_copy(update={"redis_url": url, "progress_max_rate_hz": rate_hz})
    )
    reporter = ProgressReporter(capture, {"job_id": f"bench-{uuid.uuid4().hex[:8]}"})
    reporter.set_progress(0.0)
    began = time.perf_counter()
    for i in range(calls):
        reporter.set_progress(100.0 * i / calls, operation="step")
    return (time.perf_counter() - began) / calls * 1e6


def xadd_us(client: redis.Redis, calls: int) -> float:
    key = f"bench:xadd:{uuid.uuid4().hex}"
    fields = {f"f{i}": "x" * 10 for i in range(PAYLOAD_FIELDS)}
    began = time.perf_counter()
    for _ in range(calls):
        client.xadd(key, fields, maxlen=10_000, approximate=True)
    elapsed = time.perf_counter() - began
    client.delete(key)
    return elapsed / calls * 1e6


def xadd_pipelined_per_s(client: redis.Redis, events: int, batch: int) -> float:
    key = f"bench:xadd:{uuid.uuid4().hex}"
    payload = ProcessingProgress(job_id="bench", percent=50).model_dump_json()
    began = time.perf_counter()
    for start in range(0, events, batch):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(batch, events - start)):
            pipe.xadd(key, {"e": payload}, maxlen=10_000, approximate=True)
        pipe.execute()
    elapsed = time.perf_counter() - began
    client.delete(key)
    return events / elapsed


def sample_events(n: int, jobs: int) -> list[Any]:
    out: list[Any] = []
    for i in range(n):
        job = f"bench-job-{i % jobs}"
        if i % 5 == 4:
            out.append(
                ZoneCompleted(
                    job_id=job, zone_id=f"z{i}", zone_index=i, processing_tool="t", confidence=0.9
                )
            )
        else:
            out.append(ProcessingProgress(job_id=job, percent=(i % 100), current_operation="op"))
    return out


def append_per_s(store: EventStore, events: list[Any]) -> float:
    began = time.perf_counter()
    for event in events:
        store.append(event)
    return len(events) / (time.perf_counter() - began)


def server_cpu_s(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def append_many_per_s(
    store: EventStore, events: list[Any], batch: int
) -> tuple[float, float, float]:
    """Events/s (wall clock), and client and server CPU µs per event (steady under load)."""
    cpu0, srv0 = time.process_time(), server_cpu_s(store.client)
    began = time.perf_counter()
    for start in range(0, len(events), batch):
        results = store.append_many(events[start : start + batch])
        assert not any(isinstance(r, Exception) for r in results), results[:3]
    wall = time.perf_counter() - began
    client_us = (time.process_time() - cpu0) / len(events) * 1e6
    server_us = (server_cpu_s(store.client) - srv0) / len(events) * 1e6
    return len(events) / wall, client_us, server_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="progress calls per run")
    parser.add_argument("--events", type=int, default=30_000, help="events per append run")
    parser.add_argument("--batch", type=int, default=1_000, help="events per append_many")
    parser.add_argument("--jobs", type=int, default=50, help="jobs the appended events span")
    args = parser.parse_args()

    settings = Settings.from_env()
    with redis_url_or_embedded(settings.redis_url) as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        client.flushdb()
        store = EventStore(client, settings.model_copy(update={"redis_url": url}))
        info = client.info("server")
        version = info.get("valkey_version") or info["redis_version"]
        server = f"{info.get('server_name', 'redis')} {version}"
        print(
            f"# capture benchmark: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{server}"
        )
        print(f"# load average before: {os.getloadavg()}")

        base_call = xadd_us(client, 5_000)
        coalesced = task_call_us(url, 10.0, args.calls)
        uncoalesced = task_call_us(url, 1e9, 2_000)
        stream_only = reporter_call_us(url, settings, 1e9, 2_000)
        reporter_coalesced = reporter_call_us(url, settings, 10.0, args.calls)
        print(f"plain XADD per call (baseline)            {base_call:8.1f} µs")
        print(
            f"set_progress in a task, coalesced (10 Hz) {coalesced:8.2f} µs"
            f"   ratio to XADD {coalesced / base_call:6.3f}"
        )
        print(
            f"set_progress in a task, every call written{uncoalesced:8.1f} µs"
            f"   ratio to XADD {uncoalesced / base_call:6.2f}"
            "   (stream append + PROGRESS state + task-progress event)"
        )

        print(
            f"set_progress, every call written, stream only{stream_only:8.1f} µs"
            f"   ratio to XADD {stream_only / base_call:6.2f}   (reporter outside Celery)"
        )
        print(
            f"set_progress, coalesced (10 Hz), outside Celery{reporter_coalesced:8.2f} µs"
            f"   ratio to XADD {reporter_coalesced / base_call:6.3f}   (the reporter's own cost)"
        )

        events = sample_events(args.events, args.jobs)
        base_seq = 1e6 / xadd_us(client, 5_000)
        base_pipe = xadd_pipelined_per_s(client, args.events, args.batch)
        seq = append_per_s(store, events[:5_000])
        many, many_client_us, many_server_us = append_many_per_s(store, events, args.batch)
        print(f"plain XADD one at a time (baseline)       {base_seq:8.0f} /s")
        print(
            f"EventStore.append one at a time           {seq:8.0f} /s"
            f"   ratio to XADD {seq / base_seq:6.3f}"
        )
        print(f"plain XADD pipelined (baseline)           {base_pipe:8.0f} /s")
        print(
            f"EventStore.append_many, batches of {args.batch:<6d} {many:8.0f} /s"
            f"   ratio to pipelined XADD {many / base_pipe:6.3f}"
        )
        # Client and server run on different cores: the slower of the two bounds the rate
        # when the machine is otherwise idle.
        print(
            f"append_many CPU per event: client {many_client_us:.1f} µs, server "
            f"{many_server_us:.1f} µs -> idle-machine bound "
            f"{1e6 / max(many_client_us, many_server_us):.0f} /s"
        )
        print(f"# load average after: {os.getloadavg()}")
        client.flushdb()
        client.close()


if __name__ == "__main__":
    main()
