"""Bytes no client library would send, from a raw socket: the bridge closes with the code the
WebSocket protocol gives them, says so in one quiet log line (no traceback), and stays up."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import struct
from collections.abc import Iterator

from progress_bridge.events import ProcessingQueued
from progress_bridge.store import EventStore
from tests.bridge_server import BridgeServer, bridge_settings, mint
from tests.conftest import TIMEOUT
from tests.integration.bridge_client import open_client


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def server_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record of uvicorn's and the bridge's loggers (uvicorn's do not reach the root).
    Enter it once the server runs: uvicorn's start-up logging configuration drops handlers."""
    handler = _Records()
    loggers = [logging.getLogger(n) for n in ("uvicorn.error", "uvicorn", "progress_bridge")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def masked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final client frame (clients must mask), payload under 64 KiB."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def raw_connect(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: progress.v1.json, token.{token}\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def close_code(reader: asyncio.StreamReader) -> int:
    """Read frames until the server's close frame; its status code."""
    while True:
        first, second = await asyncio.wait_for(reader.readexactly(2), TIMEOUT)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(length)
        if first & 0x0F == 0x8:
            return int(struct.unpack("!H", payload[:2])[0])


async def test_invalid_utf8_in_a_text_frame_closes_1007_quietly_and_the_bridge_serves_on(
    redis_url: str, store: EventStore, job_id: str
) -> None:
    settings = bridge_settings(redis_url)
    store.append(ProcessingQueued(job_id=job_id, task_name="demo", owner="alice"))
    with BridgeServer(settings) as bridge, server_logs() as logs:
        token = mint(settings, "alice")
        reader, writer = await raw_connect(bridge.port, token)
        writer.write(masked_frame(b'{"op":"subscribe","job_id":"\xff\xfe"}'))
        assert await close_code(reader) == 1007
        writer.close()
        # One line at most, and no traceback or ERROR for a client's bad bytes.
        loud = [r for r in logs if r.levelno >= logging.WARNING or r.exc_info]
        assert not loud, [r.getMessage() for r in loud]
        # The bridge serves the next client as before.
        client = await open_client(bridge.ws_url, token)
        await client.send({"op": "subscribe", "job_id": job_id})
        assert (await client.op("subscribed"))["recovered"] is True
        await client.close()
