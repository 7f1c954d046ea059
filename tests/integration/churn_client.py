"""Connections opened and ended in every way a bridge sees, from a separate process (so the
test process's garbage is the server's alone). Run by ``test_bridge_memory.py``:

``python -m tests.integration.churn_client WS_URL TOKEN JOB_ID PLAN``, where ``PLAN`` is
``mode:count,...`` and each mode ends its connections one way: ``close`` (a close frame),
``abort`` (TCP reset), ``wait`` (never answers pings: the server closes 4000), ``badtoken``
(refused 4001), ``stall`` (a raw socket with a tiny receive buffer that stops reading after
subscribing but sends a ``pong`` now and then, so only its reading stalls; held until stdin
closes: the server closes it 4008). Prints ``ready`` once every connection but the stalled ones
has ended, then waits for stdin to close.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol


async def one(url: str, token: str, job: str, mode: str) -> None:
    protocols = [Subprotocol("progress.v1.json"), Subprotocol(f"token.{token}")]
    if mode == "badtoken":
        protocols[1] = Subprotocol("token.not-a-token")
    try:
        ws = await connect(url, subprotocols=protocols, compression=None, ping_interval=None)
    except (InvalidStatus, OSError):
        return
    try:
        await ws.recv()  # hello
        await ws.send(json.dumps({"op": "subscribe", "job_id": job}))
        while json.loads(await ws.recv())["op"] != "subscribed":
            pass
        if mode == "abort":
            ws.transport.abort()
        elif mode == "wait":
            async for _ in ws:
                pass
        else:
            await ws.close()
    except ConnectionClosed:
        pass


def stalled(port: int, token: str, job: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: progress.v1.json, token.{token}\r\n\r\n"
        ).encode()
    )
    sock.sendall(masked(json.dumps({"op": "subscribe", "job_id": job}).encode()))
    return sock


def masked(payload: bytes) -> bytes:
    """A client text frame (the all-zero mask leaves the payload as is)."""
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


async def keep_talking(socks: list[socket.socket], done: asyncio.Event) -> None:
    pong = masked(b'{"op":"pong"}')
    while not done.is_set():
        for sock in socks:
            with contextlib.suppress(OSError):  # closed by the server, or its buffer full
                sock.send(pong, socket.MSG_DONTWAIT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.3)


async def main(url: str, token: str, job: str, plan: str) -> None:
    port = int(url.split(":")[2].split("/")[0])
    held = []
    tasks = []
    for part in plan.split(","):
        mode, _, count = part.partition(":")
        for _ in range(int(count)):
            if mode == "stall":
                held.append(stalled(port, token, job))
            else:
                tasks.append(one(url, token, job, mode))
    done = asyncio.Event()
    talking = asyncio.create_task(keep_talking(held, done))
    await asyncio.gather(*tasks)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    done.set()
    await talking
    for sock in held:
        sock.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
