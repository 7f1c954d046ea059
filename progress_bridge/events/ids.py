"""Event ids: a Redis stream entry id, ``"<ms>-<seq>"``, compared as a pair of integers.

An event's id is its position in its job's stream (DESIGN.md invariant 1), so every layer —
the store, the bridge's protocol core, the clients — orders events with these two functions.
Pure; no I/O.
"""

from __future__ import annotations

__all__ = ["MAX_ID_PART", "StreamId", "is_after", "parse_stream_id"]

#: A Redis stream entry id, ``"<ms>-<seq>"``. It is also the event's id on the wire.
StreamId = str

#: Each part of a stream id is an unsigned 64-bit integer in Redis; larger is not an id.
MAX_ID_PART = 2**64 - 1


def parse_stream_id(value: str) -> tuple[int, int]:
    """Split ``"1718000000000-3"`` into ``(1718000000000, 3)``; a bare ``"5"`` means ``(5, 0)``.

    Raises:
        ValueError: with the offending value, when it is not a stream id (not two decimal
            parts, a negative part, or a part past Redis's 64-bit range).
    """
    ms, sep, seq = value.partition("-")
    if not ms.isdigit() or (sep and not seq.isdigit()) or not ms.isascii() or not seq.isascii():
        raise ValueError(f"not a stream id: {value[:60]!r} (expected '<ms>-<seq>')")
    parsed = (int(ms), int(seq) if sep else 0)
    if parsed[0] > MAX_ID_PART or parsed[1] > MAX_ID_PART:
        raise ValueError(f"not a stream id: {value[:60]!r} (a part is past 2^64 - 1)")
    return parsed


def is_after(a: StreamId, b: StreamId) -> bool:
    """True when id ``a`` comes strictly after id ``b`` in a stream."""
    return parse_stream_id(a) > parse_stream_id(b)
