"""The bridge's server plumbing: its uvicorn protocols (what they keep of uvicorn's, their
small parts) and the shortcut to `/ws`."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from progress_bridge.bridge.uvicorn_http import is_websocket_upgrade
from progress_bridge.bridge.uvicorn_ws import BridgeWebSocketProtocol, _Flag, _Inbox


async def _app(scope: object, receive: object, send: object) -> None:
    return None


async def test_the_protocol_sets_every_attribute_uvicorns_sets() -> None:
    # BridgeWebSocketProtocol repeats uvicorn's __init__ (to build one ServerProtocol and
    # lighter queues): a uvicorn upgrade that adds state must not go unnoticed.
    config = uvicorn.Config(_app, ws_per_message_deflate=True, log_level="warning")
    config.load()
    state = ServerState()
    theirs = WebSocketsSansIOProtocol(config, state, {})
    ours = BridgeWebSocketProtocol(config, state, {})
    assert set(vars(theirs)) <= set(vars(ours)), set(vars(theirs)) - set(vars(ours))
    assert type(theirs.conn) is type(ours.conn)
    (factory,) = ours.conn.available_extensions
    assert factory.server_no_context_takeover  # shareable compressed frames


async def test_the_inbox_queues_until_a_listener_takes_over() -> None:
    inbox = _Inbox()
    inbox.put_nowait({"type": "websocket.connect"})
    assert (await inbox.get())["type"] == "websocket.connect" and inbox.empty()
    waiter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait({"type": "websocket.receive", "text": "a"})
    assert (await waiter)["text"] == "a"
    got: list[str] = []

    class Listener:
        def on_disconnect(self) -> None:
            got.append("disconnect")

    inbox.listener = Listener()  # type: ignore[assignment]
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert got == ["disconnect"]  # once: the listener is detached first


async def test_a_cancelled_wait_on_the_inbox_or_the_flag_leaves_nothing_waiting() -> None:
    inbox, flag = _Inbox(), _Flag()
    flag.clear()
    for wait in (inbox.get(), flag.wait()):
        task = asyncio.ensure_future(wait)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert inbox._waiter is None
    flag.set()
    assert flag.is_set() and await flag.wait()


@pytest.mark.parametrize(
    ("head", "upgrade"),
    [
        (b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade", True),
        (
            b"GET /ws HTTP/1.1\r\nhost: h\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade",
            True,
        ),
        (b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket", False),  # no Connection: upgrade
        (b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade", False),
        (b"GET /healthz HTTP/1.1\r\nHost: h\r\nX-Upgrade: websocket", False),
    ],
)
def test_only_websocket_upgrades_skip_the_http_protocol(head: bytes, upgrade: bool) -> None:
    assert is_websocket_upgrade(head) is upgrade


async def test_the_shortcut_learns_the_bridge_path_from_one_handshake_through_the_app() -> None:
    # The first handshake goes through the app; the endpoint that answers tells its path;
    # later ones on that path go straight to it, anything else still to the app.
    from progress_bridge.bridge.endpoint import SHORTCUT
    from progress_bridge.bridge.server import WebSocketShortcut

    seen: list[str] = []

    class Endpoint:
        async def __call__(self, scope: dict, receive: object, send: object) -> None:
            seen.append("endpoint")
            if SHORTCUT in scope.get("extensions", {}):
                scope["extensions"][SHORTCUT].learn(scope["path"], self)

    endpoint = Endpoint()

    async def app(scope: dict, receive: object, send: object) -> None:
        seen.append("app")
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            await endpoint(scope, receive, send)

    shortcut = WebSocketShortcut(app)
    ws = {"type": "websocket", "path": "/ws", "extensions": {}}
    await shortcut(dict(ws, extensions={}), None, None)
    assert seen == ["app", "endpoint"]
    seen.clear()
    await shortcut(dict(ws, extensions={}), None, None)
    assert seen == ["endpoint"]
    seen.clear()
    await shortcut({"type": "websocket", "path": "/other", "extensions": {}}, None, None)
    await shortcut({"type": "http", "path": "/ws"}, None, None)
    assert seen == ["app", "app"]


def test_the_shortcut_is_only_for_apps_without_middleware_of_their_own() -> None:
    from fastapi import FastAPI
    from starlette.middleware.gzip import GZipMiddleware

    from progress_bridge.bridge.server import WebSocketShortcut

    plain, wrapped = FastAPI(), FastAPI()
    wrapped.add_middleware(GZipMiddleware)
    assert WebSocketShortcut.fits(plain) and not WebSocketShortcut.fits(wrapped)
    assert not WebSocketShortcut.fits(_app)  # not a Starlette app: nothing known of it
