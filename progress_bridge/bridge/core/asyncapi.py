"""The bridge's protocol as an AsyncAPI 3 document, generated from the frame models.

One definition of the wire (:mod:`.frames`) gives the TypeScript types and this document, so
neither can drift from the server: ``docs/asyncapi.json`` is generated (``scripts/gen_types``),
checked for drift in CI, validated by the AsyncAPI parser in the frontend's test suite, and
served by the bridge at ``/asyncapi.json``. Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

from .client_ops import MAX_ROOM_POSITIONS
from .codes import CloseCode, ErrorCode
from .frames import protocol_schema
from .wire import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, PROTOCOL_VERSION

__all__ = ["asyncapi_document"]

#: Frame model → (message name, summary), server to client.
_SERVER_MESSAGES = {
    "HelloFrame": ("hello", "The first frame of every connection."),
    "SubscribedFrame": ("subscribed", "The answer to a subscribe (replay outcome, snapshot)."),
    "EventFrame": ("event", "One event of a watched job."),
    "BatchFrame": ("batch", "Several events in order (to a connection that lags)."),
    "UnsubscribedFrame": ("unsubscribed", "The answer to an unsubscribe."),
    "ErrorFrame": ("error", "A refused frame; the connection stays open."),
    "PingFrame": ("ping", "Heartbeat; answer with pong."),
}
#: Frame model → (message name, summary), only on ``GET /sse``.
_SSE_ONLY_MESSAGES = {
    "SseCloseFrame": ("sseClose", "The last message of a stream the bridge ends (close code)."),
}
#: Server messages an SSE stream carries besides its own (no hello, no ping: see the channel).
_SSE_SHARED = ("subscribed", "event", "batch", "error")
#: Frame model → (message name, summary), client to server.
_CLIENT_MESSAGES = {
    "SubscribeJobFrame": ("subscribeJob", "Watch one job, or resume it after a position."),
    "SubscribeRoomFrame": ("subscribeRoom", "Watch every job of a user or a document."),
    "UnsubscribeJobFrame": ("unsubscribeJob", "Stop watching a job."),
    "UnsubscribeRoomFrame": ("unsubscribeRoom", "Stop watching a room."),
    "AckFrame": ("ack", "The client has rendered the job up to an id (no answer)."),
    "PongFrame": ("pong", "Answer to ping."),
}

_DESCRIPTION = """\
Live, replayable progress of Celery jobs. Connect to `/ws` offering the subprotocols
`{json}` (or `{msgpack}`) and `token.<JWT>`; subscribe to jobs or rooms with the position last
rendered, and the bridge replays what was missed, then sends live events — each once, in order —
or says `recovered: false` with the job's snapshot. The full contract is `docs/protocol.md`.

The same frames run one way over Server-Sent Events at `GET /sse` (channel `sse`), for
networks that refuse the WebSocket upgrade.

Close codes: {close}.
""".format(
    json=JSON_SUBPROTOCOL,
    msgpack=MSGPACK_SUBPROTOCOL,
    close=", ".join(f"{int(code)} {code.name.lower()}" for code in CloseCode),
)


#: The query of ``GET /sse`` (an HTTP operation binding's ``query``).
_SSE_QUERY = {
    "type": "object",
    "properties": {
        "job_id": {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": MAX_ROOM_POSITIONS,
            "description": "A job to watch; repeat it for several (not with room).",
        },
        "room": {
            "type": "string",
            "pattern": "^(user|document):.{1,200}$",
            "description": "A room to watch (not with job_id).",
        },
        "token": {"type": "string", "description": "The JWT (or Authorization: Bearer)."},
        "last_event_id": {
            "type": "string",
            "description": "Resume from this SSE id on a first connection (a reconnecting "
            "EventSource sends the Last-Event-ID header instead, which wins).",
        },
    },
}


def _components_refs(node: Any) -> Any:
    """JSON Schema from pydantic, as AsyncAPI schema objects: ``$defs`` references point to
    ``components/schemas``; tuples use ``items`` (AsyncAPI's schema is draft-07 based)."""
    if isinstance(node, list):
        return [_components_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/components/schemas/")
        elif key == "prefixItems":
            out["items"] = _components_refs(value)
        elif key == "discriminator":
            continue  # an OpenAPI-style mapping: AsyncAPI's own discriminator is a property name
        else:
            out[key] = _components_refs(value)
    return out


def _messages(table: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return {
        name: {
            "name": name,
            "title": model.removesuffix("Frame"),
            "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{model}"},
        }
        for model, (name, summary) in table.items()
    }


_SSE_DESCRIPTION = """\
Server-Sent Events for networks that refuse the WebSocket upgrade: `GET /sse?job_id=<id>` \
(repeatable, at most {max_jobs}) or `?room=user:<name>` / `document:<id>`, with the token as \
`?token=<JWT>` (an EventSource cannot set headers) or `Authorization: Bearer`. Each SSE message's \
`data` is one frame, as on the WebSocket, but there is no hello and no ping (keep-alive comments \
every heartbeat), and the client sends nothing. Every message that moves a position carries an \
SSE `id` (`<epoch>:<id>` for one job, `m:<base64url JSON {{job: "<epoch>:<id>"}}>` otherwise); \
a reconnect sends it back as `Last-Event-ID` (or `?last_event_id=`) and resumes every job \
gap-free and duplicate-free, or with `recovered: false` and a snapshot. Refusals before any \
message are HTTP statuses with `{{"detail", "code"}}`: 400 (bad query or id), 401 (token), 403 \
(origin; another user's job for a one-job stream), 404 (unknown job for a one-job stream), 429 \
(connection limits), 503 (store unavailable). A stream the bridge ends ends with `close`."""


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.1 document of the protocol: the WebSocket and the SSE stream."""
    schemas = _components_refs(protocol_schema()["$defs"])
    server = _messages(_SERVER_MESSAGES)
    client = _messages(_CLIENT_MESSAGES)
    sse_only = _messages(_SSE_ONLY_MESSAGES)
    channel_messages = {
        name: {"$ref": f"#/components/messages/{name}"} for name in {**server, **client}
    }
    sse_messages = {
        name: {"$ref": f"#/components/messages/{name}"} for name in [*_SSE_SHARED, *sse_only]
    }
    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "progress-bridge",
            "version": f"{PROTOCOL_VERSION}.0.0",
            "description": _DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:8000",
                "protocol": "ws",
                "description": "A bridge started by `progress-bridge dev` or `serve`.",
            },
            "localHttp": {
                "host": "127.0.0.1:8000",
                "protocol": "http",
                "description": "The same bridge's HTTP side (Server-Sent Events at `/sse`).",
            },
        },
        "channels": {
            "ws": {
                "address": "/ws",
                "servers": [{"$ref": "#/servers/local"}],
                "title": "WebSocket",
                "description": "Every frame of protocol v1, both ways.",
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "query": {
                            "type": "object",
                            "properties": {
                                "token": {
                                    "type": "string",
                                    "description": "The JWT, for clients that cannot offer "
                                    "subprotocols (prefer the token.<JWT> subprotocol).",
                                }
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            },
            "sse": {
                "address": "/sse",
                "servers": [{"$ref": "#/servers/localHttp"}],
                "title": "Server-Sent Events",
                "description": _SSE_DESCRIPTION.format(max_jobs=MAX_ROOM_POSITIONS),
                "messages": sse_messages,
            },
        },
        "operations": {
            "receiveFrames": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ws"},
                "summary": "Frames the bridge sends.",
                "messages": [{"$ref": f"#/channels/ws/messages/{name}"} for name in server],
            },
            "sendFrames": {
                "action": "send",
                "channel": {"$ref": "#/channels/ws"},
                "summary": "Frames a client sends.",
                "messages": [{"$ref": f"#/channels/ws/messages/{name}"} for name in client],
            },
            "receiveSseFrames": {
                "action": "receive",
                "channel": {"$ref": "#/channels/sse"},
                "summary": "Frames the bridge sends on a Server-Sent Events stream.",
                "messages": [{"$ref": f"#/channels/sse/messages/{name}"} for name in sse_messages],
                "bindings": {
                    "http": {"method": "GET", "query": _SSE_QUERY, "bindingVersion": "0.3.0"}
                },
            },
        },
        "components": {
            "schemas": {
                **schemas,
                "ErrorCode": {
                    **schemas.get("ErrorCode", {}),
                    "enum": [code.value for code in ErrorCode],
                },
            },
            "messages": {**server, **client, **sse_only},
        },
    }
