"""What a subscribe is answered with, decided from the store's answer. Pure; no I/O.

A subscribe is answered with a ``subscribed`` frame, then the history the client missed. What
the frame says, which history follows and from which position the job's live events resume all
follow from what the store answered — a :class:`~progress_bridge.events.records.Replay` for a
subscribe with a position, a :class:`~progress_bridge.events.snapshot.JobSnapshot` for one
without — by the rules of ``docs/protocol.md`` (*Replay*). Those rules are these functions; the
:class:`~.session.Session` keeps only the state they change (each job's last sent id) and queues
what they return, so the mapping reads, and is checked, apart from the connection's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...events.ids import parse_stream_id
from ...events.records import Replay, ReplayReason, StoredEntry
from ...events.snapshot import JobSnapshot
from .client_ops import SubscribeRoom

__all__ = ["JobAnswer", "job_answer", "job_subscribed", "room_subscribed"]


@dataclass(frozen=True, slots=True)
class JobAnswer:
    """The answer to one job's subscribe (by id, or as one of a room's ``positions``)."""

    recovered: bool
    reason: ReplayReason
    epoch: str | None
    #: The job's state the client replaces its own with (None: it keeps its own).
    snapshot: JobSnapshot | None
    #: History to send after the ``subscribed`` frame, in order.
    entries: list[StoredEntry]
    #: The id the client has everything up to, before ``entries``; None: not known.
    resumes_after: tuple[int, int] | None


def job_answer(
    *, replay: Replay | None, snapshot: JobSnapshot | None, after: str | None
) -> JobAnswer:
    """The answer to a job subscribe: from ``replay`` when it had a position (``after``, its
    last id), else from ``snapshot`` (``recovered: true``, the events after the snapshot)."""
    entries: list[StoredEntry] = []
    recovered: bool
    reason: ReplayReason
    if replay is not None:
        recovered, reason, epoch = replay.recovered, replay.reason, replay.epoch
        if replay.recovered:
            entries = replay.entries
        snapshot = replay.snapshot
    else:
        recovered, reason = True, "ok"
        epoch = snapshot.epoch if snapshot else None
    resumes_after = None
    if snapshot is not None:
        resumes_after = parse_stream_id(snapshot.last_id)
    elif recovered and after is not None:
        # The client has everything up to its position: a live entry at or before it (one the
        # feed reader had not routed yet when the subscribe registered) is not resent.
        resumes_after = parse_stream_id(after)
    return JobAnswer(recovered, reason, epoch, snapshot, entries, resumes_after)


def job_subscribed(
    job_id: str,
    ref: str | int | None,
    answer: JobAnswer,
    presence: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``subscribed`` frame of a job subscribe (``presence``: who watches it, if asked)."""
    snapshot = answer.snapshot
    return {
        "op": "subscribed",
        "ref": ref,
        "job_id": job_id,
        "recovered": answer.recovered,
        "reason": answer.reason,
        "epoch": answer.epoch,
        "snapshot": snapshot.model_dump(mode="json") if snapshot else None,
        **({"presence": presence} if presence is not None else {}),
    }


def room_subscribed(
    op: SubscribeRoom, snapshots: list[JobSnapshot], replays: list[Replay]
) -> dict[str, Any]:
    """The ``subscribed`` frame of a room subscribe: the room's listed jobs, and per job of its
    ``positions`` how that job's replay went (its history follows the frame)."""
    return {
        "op": "subscribed",
        "ref": op.ref,
        "room": op.room,
        "recovered": all(r.recovered for r in replays),
        "reason": "ok",
        "epoch": None,
        "snapshot": None,
        "jobs": [s.model_dump(mode="json") for s in snapshots],
        "replays": [
            {
                "job_id": r.job_id,
                "recovered": r.recovered,
                "reason": r.reason,
                "epoch": r.epoch,
                "snapshot": r.snapshot.model_dump(mode="json") if r.snapshot else None,
            }
            for r in replays
        ],
    }
