"""Leases and the reaper against the real server: renewed leases live, expired ones are reaped
exactly once however many reapers run, released ones are left alone."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from progress_bridge.capture.producer import Capture
from progress_bridge.capture.reaper import Reaped, Reaper
from progress_bridge.config import Settings
from progress_bridge.events import (
    TERMINAL_TYPES,
    ProcessingFailed,
    ProcessingRetrying,
    ProcessingStarted,
)
from progress_bridge.store import EventStore
from tests.conftest import TIMEOUT
from tests.integration.test_task_lifecycle import wait_for


def lease(job_id: str, ms: int, **info: Any) -> tuple[int, str]:
    return ms, f"holder-{job_id}\n{json.dumps({'attempt': 1, 'worker': 'w/1', **info})}"


def expired(store: EventStore, jobs: list[str]) -> bool:
    found = {job for shard in range(store.keys.shards) for job, _ in store.expired_leases(shard)}
    return set(jobs) <= found


def test_many_reapers_at_once_end_each_lost_job_exactly_once(
    store: EventStore, settings: Settings, redis_url: str
) -> None:
    # 1. Twenty running jobs whose holders stop at once (100 ms leases, never renewed).
    jobs = [f"lost-{uuid.uuid4().hex[:10]}" for _ in range(20)]
    for job in jobs:
        store.append(ProcessingStarted(job_id=job, owner="una"), lease=lease(job, 100))
    wait_for(lambda: expired(store, jobs), "the leases to expire")

    # 2. Eight reapers, each on its own connection, race over them twice.
    outcomes: list[Reaped] = []
    start = threading.Barrier(8)

    def reap() -> None:
        reaper = Reaper(EventStore.from_url(redis_url, settings), settings)
        start.wait(TIMEOUT)
        for _ in range(2):
            outcomes.extend(reaper.reap_once())
        reaper.store.close()

    threads = [threading.Thread(target=reap) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)

    # 3. Each job was reaped by exactly one of them and has exactly one terminal event.
    assert sorted(o.job_id for o in outcomes) == sorted(jobs)
    assert {o.action for o in outcomes} == {"failed"}
    for job in jobs:
        terminals = [e for e in store.history(job) if e.type in TERMINAL_TYPES]
        assert len(terminals) == 1
        assert isinstance(terminals[0], ProcessingFailed) and terminals[0].lost
    # ... and no lease left behind.
    assert all(store.client.zscore(store.keys.running_of(job)[0], job) is None for job in jobs)


def test_a_renewed_lease_lives_and_a_released_one_is_left_alone(
    settings: Settings, store: EventStore, job_id: str
) -> None:
    # A capture whose heartbeat renews a 1 s lease every 0.25 s.
    fast = settings.model_copy(update={"lease_s": 1.0, "heartbeat_interval_s": 0.25})
    capture = Capture(fast)
    reaper = Reaper(store, fast)
    capture.start_job(ProcessingStarted(job_id=job_id, worker="w/1"), {"attempt": 1})
    # For three lease periods, no reaper pass finds it expired.
    until = time.monotonic() + 3 * fast.lease_s
    while time.monotonic() < until:
        assert reaper.reap_once() == []
        time.sleep(0.05)  # pacing the passes, not waiting for an outcome
    # The attempt ends without a terminal event (e.g. a canvas fanned out): the lease is
    # released, so the job is not failed when its holder stops renewing.
    capture.end_job(job_id)
    wait_for(lambda: capture.liveness.idle(), "the release")
    running, _ = store.keys.running_of(job_id)
    assert store.client.zscore(running, job_id) is None
    assert [e.type for e in store.history(job_id)] == ["processing_started"]


def test_a_redelivered_task_is_retried_and_a_lost_canvas_part_fails_its_job(
    store: EventStore, settings: Settings
) -> None:
    redelivered, part, parent = (f"job-{uuid.uuid4().hex[:10]}" for _ in range(3))
    handed_back: list[dict[str, Any]] = []

    def redeliver(info: dict[str, Any]) -> bool:
        handed_back.append(info)
        return True

    store.append(ProcessingStarted(job_id=parent))
    store.append(
        ProcessingStarted(job_id=redelivered), lease=lease(redelivered, 50, redeliver=True)
    )
    store.append(ProcessingStarted(job_id=part), lease=lease(part, 50, parent=parent))
    wait_for(lambda: expired(store, [redelivered, part]), "the leases to expire")

    outcomes = Reaper(store, settings, redeliver=redeliver).reap_once()

    assert sorted((o.job_id, o.action) for o in outcomes) == sorted(
        [(redelivered, "redelivered"), (part, "failed")]
    )
    retrying = store.history(redelivered)[-1]
    assert isinstance(retrying, ProcessingRetrying) and retrying.attempt == 2
    assert handed_back[0]["redeliver"] is True
    # The part's job can no longer complete: it fails too, naming the lost part.
    failed = store.history(parent)[-1]
    assert isinstance(failed, ProcessingFailed) and failed.lost
    assert failed.error_message.startswith(f"part {part} lost")


def test_without_a_celery_app_a_redelivered_task_ends_failed_lost(
    store: EventStore, settings: Settings, job_id: str
) -> None:
    store.append(ProcessingStarted(job_id=job_id), lease=lease(job_id, 50, redeliver=True))
    wait_for(lambda: expired(store, [job_id]), "the lease to expire")
    assert Reaper(store, settings).reap_once() == [Reaped(job_id, "failed")]
    assert store.history(job_id)[-1].type == "processing_failed"


def test_liveness_settings_refuse_a_heartbeat_slower_than_a_third_of_the_lease() -> None:
    from progress_bridge.exceptions import ConfigError

    with pytest.raises(ConfigError) as info:
        Settings.from_env(lease_s=3, heartbeat_interval_s=2)
    assert str(info.value) == (
        "invalid configuration: Value error, heartbeat_interval_s (2.0) must be at most a third "
        "of lease_s (3.0), or one late heartbeat would reap a running job"
    )


def test_the_reap_command_ends_lost_jobs_once_and_prints_them(
    store: EventStore,
    redis_url: str,
    job_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from progress_bridge.cli import main

    monkeypatch.setenv("REDIS_URL", redis_url)
    store.append(ProcessingStarted(job_id=job_id), lease=lease(job_id, 50))
    wait_for(lambda: expired(store, [job_id]), "the lease to expire")
    # Other tests' expired leases may be reaped too: only this job's line is checked.
    assert main(["reap", "--once", "--no-celery"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"job_id": job_id, "action": "failed"} in lines
    assert store.history(job_id)[-1].type == "processing_failed"


def test_the_reap_command_names_a_celery_app_it_cannot_load(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from progress_bridge.cli import main

    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["reap", "--once", "--celery-app", "no_such_module_here"]) == 2
    assert "cannot load the Celery app 'no_such_module_here'" in capsys.readouterr().err


def test_a_delivery_of_a_job_that_already_ended_is_not_run(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    from celery.contrib.testing.worker import start_worker

    from progress_bridge.events import ProcessingCancelled
    from tests.integration.test_task_lifecycle import make_app

    # The job ended while its message waited (here: cancelled; a reaper's failed/lost is the
    # same case when the broker delivers a lost job's message again after its visibility
    # timeout).
    store.append(ProcessingCancelled(job_id=job_id, reason="cancelled while queued"))
    app = make_app(redis_url)
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False):
        result = app.tasks[f"{app.main}.quick"].apply_async(task_id=job_id)
        # Celery records it as revoked (so AsyncResult is ready), and it wrote nothing.
        wait_for(lambda: result.state == "REVOKED", "the delivery to be skipped")
    # (Even this test's publish adds nothing: after its end a job takes only export events.)
    assert [e.type for e in store.history(job_id)] == ["processing_cancelled"]
    snap = store.snapshot(job_id)
    assert snap is not None and snap.status == "cancelled"
    running, _ = store.keys.running_of(job_id)
    assert store.client.zscore(running, job_id) is None


def test_a_lease_with_unreadable_info_still_gets_its_job_ended(
    store: EventStore, settings: Settings, job_id: str
) -> None:
    # What a reaper reads comes from Redis: a malformed record must not stop it for good.
    bad = (50, 'holder\n{"attempt": "two", "worker": 7, "parent": "../../etc", "owner": ""}')
    store.append(ProcessingStarted(job_id=job_id), lease=bad)
    wait_for(lambda: expired(store, [job_id]), "the lease to expire")
    assert Reaper(store, settings).reap_once() == [Reaped(job_id, "failed")]
    failed = store.history(job_id)[-1]
    assert isinstance(failed, ProcessingFailed) and failed.owner is None
    assert failed.error_message.startswith("attempt 1 lost: its worker (unknown worker)")
