/**
 * Frames of wire protocol v1 (docs/protocol.md): types and constants only, no code.
 *
 * Generated from the bridge's pydantic models (`progress_bridge/bridge/core/frames.py`) into
 * `src/generated/` by `scripts/gen_types`, so these cannot drift from the server; this module
 * re-exports them under the client's names. Parsing and validation live in `wire.ts`.
 */
export type {
  AckFrame,
  BatchFrame,
  ClientFrame,
  ErrorFrame,
  EventFrame,
  HelloFrame,
  PingFrame,
  PongFrame,
  PresenceFrame,
  RoomReplay,
  ServerFrame,
  SseCloseFrame,
  SseFrame,
  StreamPosition,
  SubscribeJobFrame,
  SubscribeRoomFrame,
  SubscribedFrame,
  UnsubscribeJobFrame,
  UnsubscribeRoomFrame,
  UnsubscribedFrame,
} from "../generated/events.js";
export {
  ErrorCode,
  JOB_ID_PATTERN,
  JSON_SUBPROTOCOL,
  MAX_ROOM_POSITIONS,
  MSGPACK_SUBPROTOCOL,
  PROTOCOL_VERSION,
  TOKEN_SUBPROTOCOL_PREFIX,
} from "../generated/constants.js";
