/* eslint-disable */
/**
 * GENERATED FILE - DO NOT EDIT.
 *
 * Source: progress_bridge.bridge.core.frames.protocol_constants(), via scripts/gen_types.
 * Regenerate with `npm run gen`; `npm run gen:check` fails on drift.
 */
export const PROTOCOL_VERSION = 1;
export const JSON_SUBPROTOCOL = "progress.v1.json";
export const MSGPACK_SUBPROTOCOL = "progress.v1.msgpack";
export const TOKEN_SUBPROTOCOL_PREFIX = "token.";
export const MAX_ROOM_POSITIONS = 100;
export const JOB_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$";
export const ErrorCode = {
  BAD_JSON: "bad_json",
  BAD_FRAME: "bad_frame",
  UNKNOWN_OP: "unknown_op",
  INVALID_POSITION: "invalid_position",
  NOT_FOUND: "not_found",
  FORBIDDEN: "forbidden",
  TOO_MANY_SUBSCRIPTIONS: "too_many_subscriptions",
  RATE_LIMITED: "rate_limited",
  UNAVAILABLE: "unavailable",
  INTERNAL: "internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
export const CloseCode = {
  NORMAL: 1000,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  RESTART: 1012,
  HEARTBEAT_TIMEOUT: 4000,
  UNAUTHENTICATED: 4001,
  FORBIDDEN: 4003,
  SLOW_CONSUMER: 4008,
  TOO_MANY_CONNECTIONS: 4009,
  RATE_LIMITED: 4029,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
