"""What a subscribe is answered with (``bridge.core.answers``): which history follows and from
which position the job's live events resume, decided from the store's answer alone."""

from __future__ import annotations

from progress_bridge.bridge.core.answers import job_answer, job_subscribed
from progress_bridge.events.records import Replay, StoredEntry
from progress_bridge.events.snapshot import JobSnapshot

JOB, EPOCH = "job-1", "ep1"


def _snapshot(last_id: str) -> JobSnapshot:
    return JobSnapshot(job_id=JOB, epoch=EPOCH, last_id=last_id, owner="alice")


def _stored(event_id: str) -> StoredEntry:
    return StoredEntry(JOB, event_id, EPOCH, '{"type":"processing_started","job_id":"job-1"}')


def test_a_first_subscribe_resumes_after_its_snapshot() -> None:
    answer = job_answer(replay=None, snapshot=_snapshot("100-4"), after=None)
    assert (answer.recovered, answer.reason, answer.epoch) == (True, "ok", EPOCH)
    assert answer.entries == [] and answer.resumes_after == (100, 4)
    frame = job_subscribed(JOB, 7, answer, {"watching": 1})
    assert frame["snapshot"]["last_id"] == "100-4" and frame["presence"] == {"watching": 1}


def test_a_recovered_resume_sends_the_history_after_the_clients_position() -> None:
    replay = Replay(JOB, True, "ok", EPOCH, [_stored("100-2")])
    answer = job_answer(replay=replay, snapshot=None, after="100-1")
    assert answer.entries == replay.entries and answer.resumes_after == (100, 1)
    assert "presence" not in job_subscribed(JOB, None, answer)


def test_an_unrecoverable_resume_sends_the_snapshot_and_no_partial_history() -> None:
    replay = Replay(JOB, False, "trimmed", EPOCH, [_stored("100-8")], _snapshot("100-8"))
    answer = job_answer(replay=replay, snapshot=None, after="100-1")
    assert (answer.recovered, answer.reason) == (False, "trimmed")
    assert answer.entries == [] and answer.resumes_after == (100, 8)


def test_an_unknown_job_resumes_from_nothing() -> None:
    answer = job_answer(replay=Replay(JOB, False, "unknown_job", None), snapshot=None, after="1-0")
    assert answer.snapshot is None and answer.resumes_after is None
