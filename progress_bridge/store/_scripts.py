"""What the store sends Redis and how it reads the answers: shared by the sync and asyncio stores.

The Lua scripts (``lua/``), the keys and arguments of one append, RESP packing for batches, and
the replay decision. One append is one round trip (``append.lua``) that writes the job's history
stream, its snapshot hash, its live feed shard, its owner's index and its lease together.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from ..config import Settings
from ..events.ids import is_after, parse_stream_id
from ..events.policy import TERMINAL_TYPES
from ..events.records import (
    Replay,
    ReplayReason,
    StoredEntry,
    encode_payload,
    positioned,
    with_position,
)
from ..events.schema import ProgressEvent, ZonesDeclared, parse_event
from ..events.snapshot import packed_snapshot_fields
from ..exceptions import DuplicateTerminal, InvalidEvent
from .keys import KeySpace

__all__ = [
    "APPEND_BATCH",
    "APPEND_BATCH_LUA",
    "APPEND_LUA",
    "CLAIM_FAILED",
    "EVAL_PREFIX",
    "EVENTS_PER_ZONE",
    "EXPIRED_LUA",
    "LEASE_LUA",
    "PRESENCE_LUA",
    "REPLAY_LUA",
    "Lease",
    "append_call",
    "appended",
    "bulk",
    "decide_replay",
    "memo_bulks",
    "stream_budget",
    "validate_position",
]

_LUA = files(__package__).joinpath("lua")
APPEND_LUA = _LUA.joinpath("append.lua").read_text()
REPLAY_LUA = _LUA.joinpath("replay.lua").read_text()
LEASE_LUA = _LUA.joinpath("lease.lua").read_text()
EXPIRED_LUA = _LUA.joinpath("expired.lua").read_text()
PRESENCE_LUA = _LUA.joinpath("presence.lua").read_text()
# append.lua defines append_one and ends by calling it once; the batch script is that text minus
# the call, then a loop calling append_one per event: one call appends many events of one shard
# with exactly append.lua's semantics (see append_batch.lua).
_APPEND_CALL = (
    "\nlocal id, epoch, rewritten = append_one(0, 0, nil)\nreturn {id, epoch, rewritten}\n"
)
if not APPEND_LUA.endswith(_APPEND_CALL):
    raise RuntimeError("append.lua must end by calling append_one once (see append_batch.lua)")
APPEND_BATCH_LUA = (
    APPEND_LUA.removesuffix(_APPEND_CALL) + "\n" + _LUA.joinpath("append_batch.lua").read_text()
)
#: Events per batch call: bounds how long one script holds the server (~15 µs per event).
APPEND_BATCH = 200


def bulk(value: str | int) -> bytes:
    """One RESP bulk string."""
    data = str(value).encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def memo_bulks(memo: dict[tuple[str | int, ...], bytes], values: tuple[str | int, ...]) -> bytes:
    packed = memo[values] = b"".join([bulk(value) for value in values])
    return packed


EVAL_PREFIX = bulk("EVAL") + bulk(APPEND_BATCH_LUA)


#: Events a declared zone may add to its job's history (zone_processing, zone_completed): each
#: zones_declared event grows the job's stream bound by this per zone, plus one for itself.
EVENTS_PER_ZONE = 2

#: A lease for :func:`append_call`: (milliseconds, "<holder token>\n<info JSON>").
Lease = tuple[int, str]


def stream_budget(event: ProgressEvent) -> int:
    """How much room ``event`` adds to its job's history bound (see ``append.lua``, ARGV 13)."""
    if isinstance(event, ZonesDeclared):
        return EVENTS_PER_ZONE * len(event.zones) + 1
    return 0


def append_call(
    keys: KeySpace,
    settings: Settings,
    event: ProgressEvent,
    increments: dict[str, int] | None,
    cache: dict[tuple[str, str | None], tuple[list[str], str]] | None = None,
    *,
    lease: Lease | None = None,
    claim: str | None = None,
) -> tuple[list[str], list[str | int]]:
    """Keys and arguments of append.lua for one event (a batch sends the first 4 keys and 13
    arguments per event, see append_batch.lua).

    ``cache`` (one batch's) reuses a job's keys and epoch candidate across its events: the
    candidate is only used by the event that creates the stream, so sharing it changes nothing.
    ``lease`` registers a ``processing_started``'s job as running; ``claim`` makes the append
    conditional on an expired lease (the reaper's).
    """
    job_id = event.job_id
    cached = cache.get((job_id, event.owner)) if cache is not None else None
    if cached is None:
        owner = event.owner
        owner_key = keys.owner_index_of(owner, job_id) if owner else keys.stream(job_id)
        running, running_info = keys.running_of(job_id)
        cached = (
            [
                keys.stream(job_id),
                keys.snapshot(job_id),
                keys.notify(keys.shard_of(job_id))
                if settings.feed_mode == "notify"
                else keys.feed_of(job_id),
                owner_key,
                running,
                running_info,
            ],
            secrets.token_urlsafe(9),
        )
        if cache is not None:
            cache[(job_id, owner)] = cached
    key_list, epoch_candidate = cached
    terminal = event.type in TERMINAL_TYPES
    if increments:  # read both counters back, so the event carries totals and a percent
        increments = {"zones_completed": 0, "zones_total": 0, **increments}
    more = stream_budget(event)
    argv: list[str | int] = [
        encode_payload(event),
        epoch_candidate,
        settings.stream_maxlen,
        0 if settings.feed_mode == "notify" else settings.feed_maxlen,
        event.type,
        "1" if terminal else "0",
        settings.ttl_after_end_s,
        settings.idle_ttl_s,
        job_id,
        str(int(event.ts * 1000)) if event.owner else "",
        json.dumps(increments) if increments else "",
        packed_snapshot_fields(event),
        more if more else "",
        lease[0] if lease else "",
        lease[1] if lease else "",
        claim or "",
    ]
    return key_list, argv


#: The third reply element of an append whose claim failed (nothing was written).
CLAIM_FAILED = "~lease"


def appended(event: ProgressEvent, result: Sequence[str]) -> ProgressEvent:
    event_id, epoch, extra = result
    if not event_id:
        raise DuplicateTerminal(event.job_id, existing=extra, refused=event.type)
    if extra:  # the script rewrote the payload (summed counters)
        return parse_event(with_position(extra, event_id, epoch))
    return positioned(event, event_id, epoch)


def decide_replay(
    job_id: str,
    epoch: str | None,
    last_id: str | None,
    raw: Sequence[Any],
) -> tuple[Replay, bool]:
    """Decide recovery from the replay script's answer; the bool says "fetch the snapshot"."""
    if not raw:
        return Replay(job_id, recovered=False, reason="unknown_job", epoch=None), False
    current_epoch, last_generated, first_kept, removed, rows = raw
    entries = [StoredEntry(job_id, eid, current_epoch, fields[1]) for eid, fields in rows]
    reason: ReplayReason = "ok"
    if epoch is not None and epoch != current_epoch:
        reason = "epoch_changed"
    elif last_id is not None and is_after(last_id, last_generated):
        reason = "ahead"
    elif removed != 0 and (
        (last_id is None and removed > 0)
        or (last_id is not None and first_kept and is_after(first_kept, last_id))
    ):
        # Trimming removes the oldest entries: when the position is older than the first kept
        # entry, the entry right after it may be gone. (On Redis < 7, removed is -1: unknown.)
        reason = "trimmed"
    if reason == "ok":
        return Replay(job_id, True, reason, current_epoch, entries), False
    if reason in ("epoch_changed", "ahead"):
        entries = []  # positions from another epoch mean nothing here
    return Replay(job_id, False, reason, current_epoch, entries), True


def validate_position(job_id: str, epoch: str | None, last_id: str | None) -> None:
    if last_id is not None:
        try:
            parse_stream_id(last_id)
        except ValueError as exc:
            raise InvalidEvent(str(exc), job_id=job_id) from None
    if last_id is not None and epoch is None:
        raise InvalidEvent("a last_id needs the epoch it belongs to", job_id=job_id)
