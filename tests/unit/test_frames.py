"""The frame models (the documented contract, and the source of the TypeScript types) agree with
what the protocol core emits and parses.

Integration tests check every frame a real bridge sends against the same models
(``tests/integration/bridge_client.py``); here the core's frames are checked with plain values,
and frames built from the client models are fed to the parser.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from progress_bridge.access import Principal
from progress_bridge.bridge.core import (
    Ack,
    Limits,
    Pong,
    Session,
    SubscribeJob,
    SubscribeRoom,
    Unsubscribe,
    WireFormat,
    parse_client_frame,
)
from progress_bridge.bridge.core.asyncapi import asyncapi_document
from progress_bridge.bridge.core.codes import CloseCode, ErrorCode
from progress_bridge.bridge.core.frames import (
    AckFrame,
    PongFrame,
    SubscribeJobFrame,
    SubscribeRoomFrame,
    UnsubscribeJobFrame,
    UnsubscribeRoomFrame,
    client_frame_adapter,
    protocol_constants,
    protocol_schema,
    server_frame_adapter,
)
from progress_bridge.bridge.core.wire import FeedEntry
from progress_bridge.events import JobSnapshot, Replay, StoredEntry, ZoneCompleted
from progress_bridge.events.records import encode_payload

ROOT = Path(__file__).resolve().parents[2]
JOB = "job-1"
EPOCH = "ep1"


def _entry(seq: int) -> FeedEntry:
    event = ZoneCompleted(job_id=JOB, zone_id=f"z{seq}", zone_index=seq, processing_tool="t")
    return FeedEntry(JOB, f"100-{seq}", EPOCH, encode_payload(event))


def _snapshot(last: int) -> JobSnapshot:
    return JobSnapshot(job_id=JOB, epoch=EPOCH, last_id=f"100-{last}", owner="alice")


def _frames(session: Session) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in session.take().frames]


def test_every_kind_of_frame_a_session_emits_matches_the_models() -> None:
    session = Session(Principal("alice"), WireFormat.JSON, Limits(rate_burst=100), 0.0)
    frames = _frames(session)  # hello
    session.hold()
    session.finish_job(SubscribeJob(JOB, ref="a"), 0.0, snapshot=_snapshot(1))
    stored = [StoredEntry(JOB, e.id, EPOCH, e.payload) for e in map(_entry, (2, 3))]
    replay = Replay(JOB, True, "ok", EPOCH, stored)
    session.hold()
    session.finish_job(SubscribeJob(JOB, EPOCH, "100-1", ref=7), 0.0, replay=replay)
    trimmed = Replay(JOB, False, "trimmed", EPOCH, [], _snapshot(9))
    session.hold()
    session.finish_room(
        SubscribeRoom("user:alice", "user", "alice", {JOB: (EPOCH, "100-1")}, "r"),
        0.0,
        snapshots=[_snapshot(4)],
        replays=[trimmed],
    )
    frames += _frames(session)
    session.deliver(_entry(10), 0.0)
    frames += _frames(session)  # one event
    for seq in (11, 12):
        session.deliver(_entry(seq), 0.0)
    frames += _frames(session)  # a batch
    session.unsubscribe(Unsubscribe(job_id=JOB, ref="u"), 0.0)
    session.receive('{"op":"warp","ref":"w"}', 0.0)
    # Taken now: left queued for a heartbeat, they would pass the outbox's age bound (4008).
    frames += _frames(session)
    session.tick(session.limits.heartbeat_s)
    frames += _frames(session)
    ops = [frame["op"] for frame in frames]
    assert set(ops) == {"hello", "subscribed", "event", "batch", "unsubscribed", "error", "ping"}
    for frame in frames:
        server_frame_adapter.validate_python(frame)


def test_the_models_refuse_what_the_protocol_does_not_send() -> None:
    with pytest.raises(ValidationError):
        server_frame_adapter.validate_python(
            {"op": "error", "ref": None, "code": "oops", "message": "an unknown code"}
        )
    with pytest.raises(ValidationError):  # a subscribed frame always says why
        server_frame_adapter.validate_python(
            {"op": "subscribed", "ref": None, "recovered": True, "epoch": None, "snapshot": None}
        )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (SubscribeJobFrame(op="subscribe", job_id=JOB, ref="r"), SubscribeJob(JOB, ref="r")),
        (
            SubscribeJobFrame(op="subscribe", job_id=JOB, epoch=EPOCH, last_id="5-1", ref=3),
            SubscribeJob(JOB, EPOCH, "5-1", 3),
        ),
        (
            SubscribeRoomFrame.model_validate(
                {
                    "op": "subscribe",
                    "room": "document:d1",
                    "positions": {JOB: {"epoch": EPOCH, "last_id": "5-1"}},
                }
            ),
            SubscribeRoom("document:d1", "document", "d1", {JOB: (EPOCH, "5-1")}),
        ),
        (UnsubscribeJobFrame(op="unsubscribe", job_id=JOB), Unsubscribe(job_id=JOB)),
        (UnsubscribeRoomFrame(op="unsubscribe", room="user:bob"), Unsubscribe(room="user:bob")),
        (AckFrame(op="ack", job_id=JOB, id="5-1"), Ack(JOB, "5-1")),
        (PongFrame(op="pong"), Pong()),
    ],
)
def test_frames_built_from_the_client_models_parse_to_their_ops(model: Any, expected: Any) -> None:
    data = model.model_dump_json(exclude_none=True)
    assert client_frame_adapter.validate_json(data) == model
    assert parse_client_frame(data) == expected


def test_the_schema_and_constants_name_every_frame_and_code() -> None:
    schema = protocol_schema()
    defs = schema["$defs"]
    for name in ("ServerFrame", "ClientFrame", "ProgressEvent", "JobSnapshot", "ErrorCode"):
        assert name in defs
    assert set(defs["ErrorCode"]["enum"]) == {code.value for code in ErrorCode}
    assert defs["ServerCloseCode"]["enum"] == [int(code) for code in CloseCode]
    constants = protocol_constants()
    assert constants["ErrorCode"]["NOT_FOUND"] == "not_found"
    assert constants["CloseCode"]["SLOW_CONSUMER"] == 4008


def test_the_asyncapi_document_is_generated_from_the_frames_and_committed() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.1.0"
    # The SSE stream is described beside the WebSocket: its frames and its own close message.
    sse = document["channels"]["sse"]
    assert sse["address"] == "/sse"
    assert set(sse["messages"]) == {"subscribed", "event", "batch", "error", "sseClose"}
    messages = document["components"]["messages"]
    server = {message["name"] for message in messages.values()} & {
        "hello",
        "subscribed",
        "event",
        "batch",
        "unsubscribed",
        "error",
        "ping",
    }
    assert len(server) == 7
    # Every reference resolves inside the document.
    text = json.dumps(document)
    for ref in re.findall(r'"\$ref": "#/([^"]+)"', text):
        node: Any = document
        for part in ref.split("/"):
            node = node[part]
    # docs/asyncapi.json is this document (scripts/gen_types writes it; CI checks the drift).
    committed = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    assert committed == json.loads(json.dumps(document))
