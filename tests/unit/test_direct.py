"""Pre-built server frames (:func:`progress_bridge.bridge.core.wire.ws_frame`), read back by the
``websockets`` library's own frame parser — the same code a Python client runs."""

from __future__ import annotations

import weakref

import pytest
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from progress_bridge.bridge.core.wire import ws_frame
from progress_bridge.bridge.direct import EXTENSION, DirectWriter


def parse_one(data: bytes, extensions: list[Extension] | None = None) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False, extensions=extensions)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("the frame was not complete")


# Each length encoding of RFC 6455 §5.2 on both sides of its boundary.
@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_text_frames_of_every_length_class_parse_back(size: int) -> None:
    text = "é" * (size // 2) + "a" * (size % 2)  # multi-byte UTF-8: length is of the bytes
    data = ws_frame(text)
    frame = parse_one(data)
    assert frame.opcode is Opcode.TEXT and frame.fin
    assert frame.data.decode() == text
    assert len(data) == len(text.encode()) + (2 if size < 126 else 4 if size < 65_536 else 10)


@pytest.mark.parametrize("size", [0, 125, 126, 65_536])
def test_binary_frames_parse_back(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = parse_one(ws_frame(payload))
    assert frame.opcode is Opcode.BINARY and frame.fin
    assert frame.data == payload


@pytest.mark.parametrize("size", [0, 125, 4_000, 70_000])
def test_compressed_frames_inflate_back_with_a_clients_deflate_and_are_shareable(
    size: int,
) -> None:
    text = '{"op":"event","summary":"' + "é zone " * (size // 8) + '"}'
    data = ws_frame(text, deflate_bits=12)
    assert data == ws_frame(text, deflate_bits=12)  # the same bytes for every connection
    assert data[0] & 0x40  # RSV1: compressed
    # A client's view of the negotiation: the server takes no context over, 12-bit window.
    client = PerMessageDeflate(True, False, 12, 12)
    for _ in range(2):  # the same frame twice on one connection: each decodes on its own
        frame = parse_one(data, [client])
        assert frame.opcode is Opcode.TEXT and frame.data.decode() == text


def test_anything_but_uvicorns_sansio_protocol_gets_no_direct_writer() -> None:
    class Imitation:  # the right attributes, the wrong class: not trusted
        conn = object()
        transport = object()
        handshake_complete = True

    imitation = Imitation()
    assert DirectWriter.from_scope({"type": "websocket"}) is None  # another server
    assert DirectWriter.from_scope({"extensions": {EXTENSION: weakref.ref(imitation)}}) is None
    assert DirectWriter.from_scope({"extensions": {EXTENSION: imitation}}) is None
