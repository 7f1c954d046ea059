"""Outgoing wire encoding of the bridge protocol (``docs/protocol.md``): the protocol's version
and subprotocol names, subprotocol negotiation, :class:`FeedEntry` (an event encoded at most once
per wire format) and :func:`ws_frame` (a server frame's WebSocket bytes, built once and shared by
every socket).

This is the fan-out hot path's encoding: each event is encoded once, whatever the number of its
subscribers, and a batch frame is built by concatenating already-encoded events (JSON text, or
msgpack maps behind a hand-written array header), so batching costs no re-encoding. The inbound
half — parsing what a client sends — is :mod:`.client_ops`. Pure functions and values, no I/O.
"""

from __future__ import annotations

import enum
import json
import zlib
from collections.abc import Iterable
from typing import Any

import msgpack

from ...events.ids import parse_stream_id
from ...events.policy import CoalesceKey, coalesce_key
from ...events.records import StoredEntry, with_position

__all__ = [
    "COMPRESS_SETTINGS",
    "JSON_SUBPROTOCOL",
    "MSGPACK_SUBPROTOCOL",
    "PROTOCOL_VERSION",
    "TOKEN_SUBPROTOCOL_PREFIX",
    "FeedEntry",
    "WireFormat",
    "events_frame",
    "negotiate",
    "ws_frame",
]

PROTOCOL_VERSION = 1
JSON_SUBPROTOCOL = "progress.v1.json"
MSGPACK_SUBPROTOCOL = "progress.v1.msgpack"
TOKEN_SUBPROTOCOL_PREFIX = "token."

#: zlib settings of compressed frames (uvicorn's, and ``uvicorn_ws``'s).
COMPRESS_SETTINGS = {"memLevel": 5}


class WireFormat(enum.StrEnum):
    JSON = "json"
    MSGPACK = "msgpack"


def negotiate(offered: Iterable[str]) -> tuple[WireFormat, str | None, str | None]:
    """Pick the wire format and find the token among the offered subprotocols.

    Returns:
        ``(format, subprotocol to echo or None, token or None)``. The ``token.<JWT>``
        subprotocol is never echoed; when the client offered no format, JSON is used and
        nothing is echoed.
    """
    fmt, echo, token = WireFormat.JSON, None, None
    for proto in offered:
        if proto.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            token = token or proto[len(TOKEN_SUBPROTOCOL_PREFIX) :]
        elif proto == MSGPACK_SUBPROTOCOL and echo is None:
            fmt, echo = WireFormat.MSGPACK, proto
        elif proto == JSON_SUBPROTOCOL and echo is None:
            fmt, echo = WireFormat.JSON, proto
    return fmt, echo, token


def ws_frame(payload: str | bytes, deflate_bits: int = 0) -> bytes:
    """One unmasked, unfragmented server frame: text for ``str``, binary for ``bytes``.

    ``deflate_bits``: compressed for permessage-deflate without server context takeover with
    that window (RFC 7692 §7.2.1: the message alone, sync-flushed, its empty-block tail cut,
    RSV1 set) — the same bytes for every connection that negotiated it. 0: not compressed.
    """
    if isinstance(payload, str):
        data = payload.encode()
        first = 0x81  # FIN + text
    else:
        data = payload
        first = 0x82  # FIN + binary
    if deflate_bits:
        encoder = zlib.compressobj(wbits=-deflate_bits, memLevel=COMPRESS_SETTINGS["memLevel"])
        data = (encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH))[:-4]
        first |= 0x40  # RSV1: compressed
    n = len(data)
    if n < 126:
        return bytes((first, n)) + data
    if n < 65_536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + data
    return bytes((first, 127)) + n.to_bytes(8, "big") + data


# -- Live entries ------------------------------------------------------------------------------


def _mp_map2_prefix(op: str, key: str) -> bytes:
    """msgpack of ``{"op": op, key: `` — the event(s) follow, already packed."""
    return b"\x82" + msgpack.packb("op") + msgpack.packb(op) + msgpack.packb(key)  # type: ignore[no-any-return]


_MP_EVENT_PREFIX = _mp_map2_prefix("event", "event")
_MP_BATCH_PREFIX = _mp_map2_prefix("batch", "events")


def _mp_array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


class FeedEntry:
    """One event on its way to subscribers; parsed once, encoded at most once per wire format.

    Built by the feed reader (one per feed entry, shared by every session it is routed to) or
    from replayed history. ``key`` is the parsed id, for cheap ordering checks.
    """

    __slots__ = (
        "_data",
        "_json_event",
        "_json_frame",
        "_json_wire",
        "_mp_event",
        "_mp_frame",
        "_wires",
        "coalesce_key",
        "document_id",
        "epoch",
        "export_id",
        "id",
        "job_id",
        "key",
        "owner",
        "payload",
        "size",
        "ts",
        "type",
    )

    def __init__(self, job_id: str, event_id: str, epoch: str, payload: str) -> None:
        data = json.loads(payload)
        if not isinstance(data, dict):
            raise ValueError(f"feed payload of {job_id} {event_id} is not a JSON object")
        self.job_id = job_id
        self.id = event_id
        self.epoch = epoch
        self.payload = payload
        self.key = parse_stream_id(event_id)
        self._data: dict[str, Any] | None = data
        self.type: str = str(data.get("type", ""))
        ts = data.get("ts")
        self.ts: float = float(ts) if isinstance(ts, int | float) else 0.0
        self.owner: str | None = data.get("owner")
        self.document_id: str | None = data.get("document_id")
        self.export_id: str | None = data.get("export_id")
        self.size = len(payload) + len(event_id) + len(epoch) + 48
        #: Entries with the same key replace each other in a lagging outbox; None: never.
        self.coalesce_key: CoalesceKey | None = coalesce_key(job_id, self.type, self.export_id)
        self._json_event: str | None = None
        self._json_frame: str | None = None
        self._mp_event: bytes | None = None
        self._mp_frame: bytes | None = None
        self._json_wire: bytes | None = None
        self._wires: dict[tuple[WireFormat, int], bytes] | None = None

    @classmethod
    def from_stored(cls, entry: StoredEntry) -> FeedEntry:
        return cls(entry.job_id, entry.id, entry.epoch, entry.payload)

    def json_event(self) -> str:
        if self._json_event is None:
            self._json_event = with_position(self.payload, self.id, self.epoch)
        return self._json_event

    def json_frame(self) -> str:
        if self._json_frame is None:
            self._json_frame = '{"op":"event","event":' + self.json_event() + "}"
        return self._json_frame

    def mp_event(self) -> bytes:
        if self._mp_event is None:
            data = self._data if self._data is not None else json.loads(self.payload)
            packed: bytes = msgpack.packb({"id": self.id, "epoch": self.epoch, **data})
            self._mp_event = packed
            self._data = None  # the packed form is all msgpack sessions need from now on
        return self._mp_event

    def mp_frame(self) -> bytes:
        if self._mp_frame is None:
            self._mp_frame = _MP_EVENT_PREFIX + self.mp_event()
        return self._mp_frame

    def wire_frame(self, fmt: WireFormat, deflate_bits: int = 0) -> bytes:
        """This event's ``event`` frame as WebSocket frame bytes, built once per format and
        compression (see :func:`ws_frame`)."""
        if fmt is WireFormat.JSON and not deflate_bits:  # the common case: one slot, no key
            if self._json_wire is None:
                self._json_wire = ws_frame(self.json_frame())
            return self._json_wire
        key = (fmt, deflate_bits)
        wires = self._wires
        if wires is None:
            wires = self._wires = {}
        wire = wires.get(key)
        if wire is None:
            frame = self.mp_frame() if fmt is WireFormat.MSGPACK else self.json_frame()
            wire = wires[key] = ws_frame(frame, deflate_bits)
        return wire

    def __repr__(self) -> str:
        return f"FeedEntry({self.job_id!r}, {self.id!r}, {self.type!r})"


def events_frame(run: list[FeedEntry], fmt: WireFormat) -> str | bytes:
    """One ``event`` frame, or a ``batch`` frame of several, from pre-encoded events."""
    if fmt is WireFormat.MSGPACK:
        if len(run) == 1:
            return run[0].mp_frame()
        return _MP_BATCH_PREFIX + _mp_array_header(len(run)) + b"".join(e.mp_event() for e in run)
    if len(run) == 1:
        return run[0].json_frame()
    return '{"op":"batch","events":[' + ",".join(e.json_event() for e in run) + "]}"
