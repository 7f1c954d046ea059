"""The event schema and the snapshot mapping, with plain values."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from progress_bridge.events import (
    TERMINAL_TYPES,
    ProcessingCancelled,
    ProcessingCompleted,
    ProcessingFailed,
    ProcessingProgress,
    ProcessingRetrying,
    ZoneCompleted,
    json_schema,
    parse_event,
)
from progress_bridge.events.ids import is_after, parse_stream_id
from progress_bridge.events.records import encode_payload, with_position
from progress_bridge.events.snapshot import JobSnapshot, snapshot_fields
from progress_bridge.store.keys import KeySpace


def test_parse_event_dispatches_on_type_tag() -> None:
    event = parse_event(
        {
            "type": "zone_completed",
            "job_id": "j1",
            "zone_id": "p1-z0",
            "zone_index": 0,
            "processing_tool": "pdfplumber.text",
        }
    )
    assert isinstance(event, ZoneCompleted)
    assert event.status == "completed"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"type": "processing_progress", "job_id": "j", "percent": 101},
            "less than or equal to 100",
        ),
        (
            {"type": "processing_progress", "job_id": "j", "percent": -1},
            "greater than or equal to 0",
        ),
        ({"type": "processing_progress", "job_id": "j", "percent": math.nan}, "finite"),
        ({"type": "processing_progress", "job_id": "../etc", "percent": 1}, "pattern"),
        ({"type": "no_such_event", "job_id": "j"}, "does not match any of the expected tags"),
        ({"type": "processing_started", "job_id": "j", "surprise": 1}, "Extra inputs"),
    ],
)
def test_off_schema_payloads_are_rejected_with_the_reason(payload: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_event(payload)


def test_stored_payload_round_trips_with_position_spliced_in() -> None:
    event = ProcessingProgress(job_id="j1", percent=42.5, current_operation='say "hi"')
    wire = with_position(encode_payload(event), "1718000000000-3", "ep0ch")
    back = parse_event(wire)
    assert back == event.model_copy(update={"id": "1718000000000-3", "epoch": "ep0ch"})


def test_terminal_types_are_exactly_completed_failed_cancelled() -> None:
    assert {
        ProcessingCompleted.model_fields["type"].default,
        ProcessingFailed.model_fields["type"].default,
        ProcessingCancelled.model_fields["type"].default,
    } == TERMINAL_TYPES


def test_json_schema_holds_every_event_and_the_snapshot() -> None:
    schema = json_schema()
    names = set(schema["$defs"])
    assert {"ZoneCompleted", "ProcessingRetrying", "ExportFailed", "JobSnapshot"} <= names
    assert schema["discriminator"]["propertyName"] == "type"


def test_snapshot_fields_of_retry_keep_the_failed_attempt_number() -> None:
    fields = snapshot_fields(ProcessingRetrying(job_id="j", attempt=3, reason="boom"))
    assert fields["status"] == '"retrying"'
    assert fields["attempt"] == "2"


def test_snapshot_from_hash_rebuilds_zones_in_index_order() -> None:
    raw = {
        "epoch": "e",
        "last_id": "5-0",
        "status": '"started"',
        "zone:b:info": '{"index":1,"page":1,"kind":"text","bbox":null}',
        "zone:a:info": '{"index":0,"page":1,"kind":"table","bbox":[0,0,1,1]}',
        "zone:a:state": '{"status":"completed","processing_tool":"t","confidence":0.9}',
    }
    snap = JobSnapshot.from_hash("j", raw)
    assert [z.zone_id for z in snap.zones] == ["a", "b"]
    assert (snap.zones[0].status, snap.zones[1].status) == ("completed", "pending")


def test_snapshot_from_hash_ignores_the_stores_progress_bp_counter() -> None:
    # A canvas job's hash holds the store's progress_bp counter, which is not a snapshot field.
    raw = {"epoch": "e", "last_id": "5-0", "percent": "42.5", "progress_bp": "4250"}
    snap = JobSnapshot.from_hash("j", raw)
    assert snap.percent == 42.5 and "progress_bp" not in snap.model_dump()


def test_stream_ids_compare_as_integer_pairs_not_strings() -> None:
    assert is_after("10-0", "9-0")  # "10-0" < "9-0" as strings
    assert is_after("5-10", "5-9")
    assert not is_after("5-9", "5-9")
    with pytest.raises(ValueError, match="not a stream id: 'x-1'"):
        parse_stream_id("x-1")


def test_keys_of_one_job_share_one_hash_tag() -> None:
    keys = KeySpace("pb", 16)
    tags = {
        k[k.index("{") : k.index("}") + 1]
        for k in (
            keys.stream("job-1"),
            keys.snapshot("job-1"),
            keys.feed_of("job-1"),
            keys.owner_index_of("alice", "job-1"),
        )
    }
    assert len(tags) == 1
