"""The bridge's protocol as an AsyncAPI 3 document, generated from the frame models.

One definition of the wire (:mod:`.frames`) gives the TypeScript types and this document, so
neither can drift from the server: ``docs/asyncapi.json`` is generated (``scripts/gen_types``),
checked for drift in CI, validated by the AsyncAPI parser in the frontend's test suite, and
served by the bridge at ``/asyncapi.json``. Pure; no I/O.
"""

from __future__ import annotations

from typing import Any

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

Close codes: {close}.
""".format(
    json=JSON_SUBPROTOCOL,
    msgpack=MSGPACK_SUBPROTOCOL,
    close=", ".join(f"{int(code)} {code.name.lower()}" for code in CloseCode),
)


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


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the WebSocket protocol."""
    schemas = _components_refs(protocol_schema()["$defs"])
    server = _messages(_SERVER_MESSAGES)
    client = _messages(_CLIENT_MESSAGES)
    channel_messages = {
        name: {"$ref": f"#/components/messages/{name}"} for name in {**server, **client}
    }
    return {
        "asyncapi": "3.0.0",
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
            }
        },
        "channels": {
            "ws": {
                "address": "/ws",
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
            }
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
        },
        "components": {
            "schemas": {
                **schemas,
                "ErrorCode": {
                    **schemas.get("ErrorCode", {}),
                    "enum": [code.value for code in ErrorCode],
                },
            },
            "messages": {**server, **client},
        },
    }
