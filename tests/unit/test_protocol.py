"""The sans-I/O protocol core with plain values: frames, replay ordering, outbox, limits."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest

from progress_bridge.access import Principal
from progress_bridge.bridge.core import (
    Ack,
    CloseCode,
    FeedEntry,
    FrameError,
    Limits,
    Session,
    SubscribeJob,
    SubscribeRoom,
    Unsubscribe,
    WireFormat,
    negotiate,
    parse_client_frame,
)
from progress_bridge.bridge.core.client_ops import MAX_ROOM_POSITIONS
from progress_bridge.events import (
    ProcessingCompleted,
    ProcessingProgress,
    ProgressEvent,
    ZoneCompleted,
)
from progress_bridge.events.records import Replay, StoredEntry, encode_payload
from progress_bridge.events.snapshot import JobSnapshot

JOB = "job-1"
EPOCH = "ep1"
ALICE = Principal("alice")


def entry(seq: int, event: ProgressEvent | None = None, job: str = JOB) -> FeedEntry:
    event = event or ZoneCompleted(
        job_id=job, zone_id=f"z{seq}", zone_index=seq, processing_tool="t", ts=1000.0 + seq
    )
    return FeedEntry(job, f"100-{seq}", EPOCH, encode_payload(event))


def progress(seq: int, percent: float, job: str = JOB) -> FeedEntry:
    return entry(seq, ProcessingProgress(job_id=job, percent=percent), job)


def stored(seq: int) -> StoredEntry:
    e = entry(seq)
    return StoredEntry(JOB, e.id, EPOCH, e.payload)


def snapshot(last_seq: int) -> JobSnapshot:
    return JobSnapshot(job_id=JOB, epoch=EPOCH, last_id=f"100-{last_seq}", owner="alice")


def decode(frames: list[str | bytes]) -> list[dict[str, Any]]:
    return [msgpack.unpackb(f) if isinstance(f, bytes) else json.loads(f) for f in frames]


def sent_ids(session: Session) -> list[str]:
    out = []
    for frame in decode(session.take().frames):
        if frame["op"] == "event":
            out.append(frame["event"]["id"])
        elif frame["op"] == "batch":
            out.extend(e["id"] for e in frame["events"])
    return out


def new_session(**limits: Any) -> Session:
    session = Session(ALICE, WireFormat.JSON, Limits(**limits), now=0.0)
    assert decode(session.take().frames)[0]["op"] == "hello"
    return session


# -- handshake ---------------------------------------------------------------------------------


def test_negotiate_picks_format_and_finds_token_without_echoing_it() -> None:
    assert negotiate(["progress.v1.msgpack", "token.abc"]) == (
        WireFormat.MSGPACK,
        "progress.v1.msgpack",
        "abc",
    )
    assert negotiate(["token.abc", "progress.v1.json"]) == (
        WireFormat.JSON,
        "progress.v1.json",
        "abc",
    )
    assert negotiate([]) == (WireFormat.JSON, None, None)


def test_hello_is_the_first_frame_and_states_the_limits() -> None:
    session = Session(ALICE, WireFormat.JSON, Limits(heartbeat_s=7, max_frame_bytes=999), 0.0)
    assert decode(session.take().frames) == [
        {"op": "hello", "protocol": 1, "user": "alice", "heartbeat_s": 7, "max_frame_bytes": 999}
    ]


# -- client frames -----------------------------------------------------------------------------


def test_parse_subscribe_unsubscribe_ack() -> None:
    assert parse_client_frame('{"op":"subscribe","job_id":"j1","ref":"a"}') == SubscribeJob(
        "j1", ref="a"
    )
    assert parse_client_frame(
        '{"op":"subscribe","job_id":"j1","epoch":"e","last_id":"5-1"}'
    ) == SubscribeJob("j1", "e", "5-1")
    room = parse_client_frame(
        '{"op":"subscribe","room":"user:al","positions":{"j2":{"epoch":"e","last_id":"1-0"}}}'
    )
    assert room == SubscribeRoom("user:al", "user", "al", {"j2": ("e", "1-0")})
    assert parse_client_frame('{"op":"unsubscribe","room":"document:d"}') == Unsubscribe(
        room="document:d"
    )
    assert parse_client_frame('{"op":"ack","job_id":"j1","id":"5-1"}') == Ack("j1", "5-1")
    packed = msgpack.packb({"op": "subscribe", "job_id": "j1"})
    assert parse_client_frame(packed, WireFormat.MSGPACK) == SubscribeJob("j1")
    asks = parse_client_frame('{"op":"subscribe","job_id":"j1","presence":true}')
    assert asks == SubscribeJob("j1", presence=True)


def _at(last_id: str) -> str:
    return json.dumps({"op": "subscribe", "job_id": "j", "epoch": "e", "last_id": last_id})


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("{", "bad_json"),
        (b"\x00\x01", "bad_json"),
        ("[1]", "bad_frame"),
        ('{"op":"subscribe","job_id":""}', "bad_frame"),
        ('{"op":"subscribe","room":"user:"}', "bad_frame"),
        ('{"op":"subscribe","job_id":"j","ref":{"x":1}}', "bad_frame"),
        ('{"op":"subscribe","job_id":"j","presence":"yes"}', "bad_frame"),
        ('{"op":"warp"}', "unknown_op"),
        ('{"nop":1}', "bad_frame"),
        ('{"op":"subscribe","job_id":"j","last_id":"1-0"}', "invalid_position"),
        ('{"op":"subscribe","job_id":"j","epoch":"e"}', "invalid_position"),
        ('{"op":"subscribe","job_id":"j","epoch":"e","last_id":"-1"}', "invalid_position"),
        # Ids past Redis's 64-bit parts are not ids (they used to get "unavailable").
        (
            '{"op":"subscribe","job_id":"j","epoch":"e","last_id":"18446744073709551616-0"}',
            "invalid_position",
        ),
        (
            '{"op":"subscribe","job_id":"j","epoch":"e","last_id":"' + "9" * 30 + '-0"}',
            "invalid_position",
        ),
        (
            '{"op":"subscribe","job_id":"j","epoch":"e","last_id":"1-' + "9" * 30 + '"}',
            "invalid_position",
        ),
        # A field of the wrong type is a bad frame, not a bad position.
        ('{"op":"subscribe","job_id":"j","epoch":7,"last_id":"0-0"}', "bad_frame"),
        ('{"op":"subscribe","job_id":"j","epoch":"e","last_id":5}', "bad_frame"),
        # A subscribe names one target.
        ('{"op":"subscribe","job_id":"j","room":"user:alice"}', "bad_frame"),
        ('{"op":"unsubscribe","job_id":"j","room":"user:alice"}', "bad_frame"),
    ],
)
def test_bad_client_frames_raise_typed_errors(data: str | bytes, code: str) -> None:
    with pytest.raises(FrameError) as exc:
        parse_client_frame(data)
    assert exc.value.code == code


def test_a_malformed_ack_gets_no_answer_and_a_text_frame_on_msgpack_gets_bad_json() -> None:
    session = new_session()
    assert session.receive('{"op":"ack","job_id":"j","id":"nope"}', 0.0) is None
    assert session.take().frames == [] and session.ignored == 1
    mp = Session(ALICE, WireFormat.MSGPACK, Limits(), 0.0)
    mp.take()
    assert mp.receive('{"op":"subscribe","job_id":"j"}', 0.0) is None
    (error,) = decode(mp.take().frames)
    assert (error["op"], error["code"]) == ("error", "bad_json")


def test_a_room_subscribe_carries_a_bounded_number_of_positions() -> None:
    positions = {f"j{n}": {"epoch": "e", "last_id": "1-0"} for n in range(MAX_ROOM_POSITIONS + 1)}
    frame = json.dumps({"op": "subscribe", "room": "user:alice", "positions": positions})
    with pytest.raises(FrameError) as exc:
        parse_client_frame(frame)
    assert exc.value.code == "bad_frame" and str(MAX_ROOM_POSITIONS) in str(exc.value)


def test_large_answers_are_charged_against_the_inbound_rate() -> None:
    # A job whose snapshot is big (many zones): re-subscribing to it costs its size in tokens,
    # so a client cannot make the bridge send it over and over at the frame rate.
    zones = [{"zone_id": f"z{n}", "index": n} for n in range(2_000)]
    big = JobSnapshot.model_validate(
        {"job_id": JOB, "epoch": EPOCH, "last_id": "100-1", "owner": "alice", "zones": zones}
    )
    session = new_session(rate_per_s=20, rate_burst=40)
    answered = 0
    for n in range(40):
        op = session.receive(json.dumps({"op": "subscribe", "job_id": JOB, "ref": n}), 0.0)
        if isinstance(op, SubscribeJob):
            session.hold()
            session.finish_job(op, 0.0, snapshot=big)
            answered += 1
    frames = decode(session.take().frames)
    assert answered < 10  # not 40: the answers' bytes used up the burst
    assert any(f.get("code") == "rate_limited" for f in frames)


def test_a_connection_is_closed_4001_when_its_token_expires() -> None:
    session = Session(ALICE, WireFormat.JSON, Limits(heartbeat_s=10), 0.0, expires_at=25.0)
    session.take()  # hello, written (left queued it would be a stalled reader's frame)
    session.receive('{"op":"pong"}', 20.0)
    session.tick(24.0)
    assert session.close_code is None
    session.tick(25.0)
    assert (session.close_code, session.close_reason) == (
        CloseCode.UNAUTHENTICATED,
        "token expired",
    )


def test_error_keeps_the_ref_of_the_refused_frame() -> None:
    with pytest.raises(FrameError) as exc:
        parse_client_frame('{"op":"warp","ref":"r9"}')
    assert (exc.value.ref, str(exc.value)) == ("r9", "unknown op 'warp'")


# -- encoding ----------------------------------------------------------------------------------


def test_event_frame_is_built_once_from_the_stored_payload() -> None:
    e = entry(1)
    frame = e.json_frame()
    assert frame is e.json_frame()  # cached: one encoding shared by every session
    decoded = json.loads(frame)
    assert decoded["op"] == "event"
    assert (decoded["event"]["id"], decoded["event"]["epoch"]) == ("100-1", EPOCH)
    assert decoded["event"]["zone_id"] == "z1"
    assert msgpack.unpackb(e.mp_frame()) == decoded


def test_queued_events_go_out_as_one_batch_in_order_in_both_formats() -> None:
    for fmt in WireFormat:
        session = Session(ALICE, fmt, Limits(), 0.0)
        session.take()
        for n in range(1, 4):
            session.deliver(entry(n), 0.0)
        frames = decode(session.take().frames)
        assert [f["op"] for f in frames] == ["batch"]
        assert [e["id"] for e in frames[0]["events"]] == ["100-1", "100-2", "100-3"]


def test_batches_are_split_at_the_limit_and_around_control_frames() -> None:
    session = new_session(batch_max_events=2)
    for n in range(1, 4):
        session.deliver(entry(n), 0.0)
    session.error("x", "m", None, 0.0)
    session.deliver(entry(4), 0.0)
    result = session.take()
    assert [f["op"] for f in decode(result.frames)] == ["batch", "event", "error", "event"]
    assert result.events == 4 and result.oldest_ts == 1001.0


# -- replay ------------------------------------------------------------------------------------


def test_subscribe_holds_live_entries_then_sends_history_and_skips_ids_already_sent() -> None:
    # Registered live first: entries 3..5 arrive while history 2..4 is being read.
    session = new_session()
    op = SubscribeJob(JOB, EPOCH, "100-1", ref="s")
    session.hold()
    for n in (3, 4, 5):
        assert session.deliver(entry(n), 0.0) is False
    replay = Replay(JOB, True, "ok", EPOCH, [stored(2), stored(3), stored(4)])
    session.finish_job(op, 0.0, replay=replay)
    frames = decode(session.take().frames)
    assert frames[0] == {
        "op": "subscribed",
        "ref": "s",
        "job_id": JOB,
        "recovered": True,
        "reason": "ok",
        "epoch": EPOCH,
        "snapshot": None,
    }
    assert [e["id"] for e in frames[1]["events"]] == ["100-2", "100-3", "100-4", "100-5"]
    # Later live entries: only new ids pass.
    session.deliver(entry(5), 0.0)
    session.deliver(entry(6), 0.0)
    assert sent_ids(session) == ["100-6"]


def test_failed_subscribe_drops_held_entries_of_its_job_and_releases_the_others() -> None:
    # Watching job-2 already; a subscribe to JOB registers, holds, and then fails.
    session = new_session()
    session.hold()
    session.finish_job(SubscribeJob("job-2"), 0.0, snapshot=None)
    session.take()
    session.hold()
    session.deliver(entry(1), 0.0)
    session.deliver(entry(2, job="job-2"), 0.0)
    session.fail_subscribe(SubscribeJob(JOB, ref=1), "unavailable", "store unreachable", 0.0)
    # The error, then only job-2's entry: nothing of the job the subscribe failed for.
    frames = decode(session.take().frames)
    assert [f["op"] for f in frames] == ["error", "event"]
    assert frames[1]["event"]["job_id"] == "job-2"


def test_failed_resubscribe_of_a_watched_job_still_releases_its_entries() -> None:
    # The connection was authorized for JOB earlier: a failed re-subscribe loses nothing.
    session = new_session()
    session.hold()
    session.finish_job(SubscribeJob(JOB), 0.0, snapshot=None)
    session.take()
    session.hold()
    session.deliver(entry(1), 0.0)
    session.fail_subscribe(SubscribeJob(JOB, ref=1), "unavailable", "store unreachable", 0.0)
    assert [f["op"] for f in decode(session.take().frames)] == ["error", "event"]


def test_resume_with_nothing_missed_does_not_resend_a_late_live_entry() -> None:
    # The client has 100-3; the feed reader routes 100-3 only after the subscribe registered.
    session = new_session()
    session.hold()
    session.deliver(entry(3), 0.0)
    session.deliver(entry(4), 0.0)
    replay = Replay(JOB, True, "ok", EPOCH, [])
    session.finish_job(SubscribeJob(JOB, EPOCH, "100-3"), 0.0, replay=replay)
    assert sent_ids(session) == ["100-4"]


def test_first_subscribe_sends_snapshot_then_only_newer_events() -> None:
    session = new_session()
    session.hold()
    session.deliver(entry(4), 0.0)
    session.deliver(entry(5), 0.0)
    session.finish_job(SubscribeJob(JOB), 0.0, snapshot=snapshot(4))
    frames = decode(session.take().frames)
    assert frames[0]["snapshot"]["last_id"] == "100-4"
    assert frames[1]["event"]["id"] == "100-5"


def test_deliver_now_only_when_nothing_is_queued_held_or_closing_and_never_twice() -> None:
    session = new_session()
    session.finish_job(SubscribeJob(JOB), 0.0, snapshot=snapshot(4))
    assert session.deliver_now(entry(5)) is False  # would overtake the queued answer...
    session.deliver(entry(5), 0.0)  # ...so it goes through deliver, behind it
    assert session.deliver_now(entry(6)) is False
    assert sent_ids(session) == ["100-5"]
    assert session.deliver_now(entry(6)) is True  # idle: the caller writes it
    assert session.deliver_now(entry(6)) is False  # already sent
    assert session.deliver_now(entry(4)) is False  # in the snapshot
    assert session.take().frames == []  # a direct write queues nothing
    session.hold()
    assert session.deliver_now(entry(7)) is False  # a subscribe in progress holds entries
    session.release(0.0)
    session.close(1000)
    assert session.deliver_now(entry(8)) is False


def test_unrecoverable_position_sends_snapshot_and_no_partial_history() -> None:
    session = new_session()
    session.hold()
    session.deliver(entry(9), 0.0)
    replay = Replay(JOB, False, "trimmed", EPOCH, [stored(7), stored(8)], snapshot(8))
    session.finish_job(SubscribeJob(JOB, EPOCH, "100-1"), 0.0, replay=replay)
    frames = decode(session.take().frames)
    assert (frames[0]["recovered"], frames[0]["reason"]) == (False, "trimmed")
    assert frames[0]["snapshot"]["last_id"] == "100-8"
    assert [f["event"]["id"] for f in frames[1:]] == ["100-9"]


def test_room_subscribe_lists_jobs_and_replays_positions() -> None:
    session = new_session()
    op = SubscribeRoom("user:alice", "user", "alice", {JOB: (EPOCH, "100-1")}, ref=1)
    session.hold()
    session.deliver(entry(3), 0.0)
    other = JobSnapshot(job_id="job-2", epoch="e2", last_id="5-0", owner="alice")
    replay = Replay(JOB, True, "ok", EPOCH, [stored(2), stored(3)])
    session.finish_room(op, 0.0, snapshots=[other], replays=[replay])
    frames = decode(session.take().frames)
    assert frames[0]["room"] == "user:alice" and frames[0]["jobs"][0]["job_id"] == "job-2"
    assert frames[0]["replays"][0]["recovered"] is True
    assert [e["id"] for e in frames[1]["events"]] == ["100-2", "100-3"]
    assert session.rooms == {"user:alice"} and session.jobs == []
    # A listed job's events older than its snapshot are not sent again.
    session.deliver(FeedEntry("job-2", "5-0", "e2", entry(0, job="job-2").payload), 0.0)
    session.deliver(FeedEntry("job-2", "6-0", "e2", entry(0, job="job-2").payload), 0.0)
    assert sent_ids(session) == ["6-0"]


# -- backpressure ------------------------------------------------------------------------------


def test_lagging_outbox_coalesces_progress_latest_wins_and_keeps_zone_events() -> None:
    session = new_session()
    session.deliver(progress(1, 10), 0.0)
    session.deliver(entry(2), 0.0)
    session.deliver(progress(3, 20), 0.0)
    session.deliver(progress(4, 30), 0.0)
    session.deliver(entry(5, ProcessingCompleted(job_id=JOB)), 0.0)
    assert (session.outbox_depth, session.coalesced) == (3, 2)
    # The newest progress goes at the end of the queue, so ids still increase.
    assert sent_ids(session) == ["100-2", "100-4", "100-5"]


def test_progress_of_different_jobs_does_not_coalesce() -> None:
    session = new_session()
    session.deliver(progress(1, 10), 0.0)
    session.deliver(progress(2, 20, job="job-2"), 0.0)
    assert session.coalesced == 0 and session.outbox_depth == 2


def test_outbox_past_its_bound_closes_4008_and_drops_the_queue() -> None:
    session = new_session(outbox_max_frames=3)
    for n in range(1, 4):
        session.deliver(entry(n), 0.0)
    assert session.close_code is None
    session.deliver(entry(4), 0.0)
    assert session.close_code == CloseCode.SLOW_CONSUMER
    assert session.outbox_depth == 0 and session.take().frames == []
    assert session.deliver(entry(5), 0.0) is False


def test_outbox_waiting_too_long_closes_4008() -> None:
    session = new_session(outbox_max_age_s=5, heartbeat_s=100)
    session.deliver(entry(1), 1.0)
    session.tick(5.0)
    assert session.close_code is None
    session.tick(6.5)
    assert session.close_code == CloseCode.SLOW_CONSUMER


# -- inbound limits and heartbeat -------------------------------------------------------------


def test_flood_is_rate_limited_once_then_closed_4029_and_calm_forgives() -> None:
    session = new_session(rate_per_s=10, rate_burst=3, rate_strikes=4)
    pong = '{"op":"pong"}'
    for _ in range(3):
        session.receive(pong, 0.0)
    session.receive(pong, 0.0)  # dropped: one error
    session.receive(pong, 0.0)  # dropped: no second error
    errors = [f for f in decode(session.take().frames) if f["op"] == "error"]
    assert [e["code"] for e in errors] == ["rate_limited"]
    # Quiet long enough to refill: strikes are forgiven.
    session.receive(pong, 10.0)
    for _ in range(6):
        session.receive(pong, 10.0)
    assert session.close_code == CloseCode.RATE_LIMITED


def test_oversize_frame_closes_1009() -> None:
    session = new_session(max_frame_bytes=300)
    assert session.receive("x" * 301, 0.0) is None
    assert session.close_code == CloseCode.TOO_BIG


def test_heartbeat_pings_and_closes_4000_after_two_silent_periods() -> None:
    session = new_session(heartbeat_s=10)
    session.tick(9.0)
    assert session.take().frames == []
    session.tick(10.0)
    assert decode(session.take().frames) == [{"op": "ping"}]
    session.receive('{"op":"pong"}', 15.0)
    session.tick(34.0)
    assert session.close_code is None
    session.tick(35.5)
    assert session.close_code == CloseCode.HEARTBEAT_TIMEOUT


def test_subscription_limit_counts_jobs_and_rooms_but_not_resubscribes() -> None:
    session = new_session(max_subscriptions=2)
    session.finish_job(SubscribeJob("j1"), 0.0, snapshot=snapshot(1))
    session.finish_room(SubscribeRoom("user:alice", "user", "alice"), 0.0, snapshots=[], replays=[])
    session.check_subscribe(SubscribeJob("j1"))  # already subscribed: fine
    with pytest.raises(FrameError) as exc:
        session.check_subscribe(SubscribeJob("j2", ref="x"))
    assert (exc.value.code, exc.value.ref) == ("too_many_subscriptions", "x")


def test_principal_sees_own_and_granted_jobs_admin_sees_all() -> None:
    alice = Principal("alice", jobs=frozenset({"granted"}))
    assert alice.may_watch("j", "alice") and alice.may_watch("granted", "bob")
    assert not alice.may_watch("j", "bob") and not alice.may_watch("j", None)
    assert Principal("root", admin=True).may_watch("j", "bob")
    assert alice.may_join_user_room("alice") and not alice.may_join_user_room("bob")
