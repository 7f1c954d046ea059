/**
 * The framework-free client: public names only (modules not listed here are internal).
 */
export { backoffCeiling, backoffDelay, type BackoffOptions } from "./backoff";
export type {
  JobChange,
  ProgressClientEvents,
  RetryInfo,
  RoomChange,
  SnapshotInfo,
  StateChange,
} from "./clientEvents";
export { CloseCode, closeAction, SERVER_CLOSE_ACTIONS, type CloseAction } from "./closeCodes";
export { STATE_TRANSITIONS, type ClientState } from "./connectionState";
export {
  AuthenticationError,
  ConnectionForbiddenError,
  IllegalTransitionError,
  ProgressClientError,
  ProtocolViolationError,
  ServerError,
} from "./errors";
export {
  ErrorCode,
  JSON_SUBPROTOCOL,
  MSGPACK_SUBPROTOCOL,
  PROTOCOL_VERSION,
  TOKEN_SUBPROTOCOL_PREFIX,
  type AckFrame,
  type BatchFrame,
  type ClientFrame,
  type ErrorFrame,
  type EventFrame,
  type HelloFrame,
  type PingFrame,
  type PongFrame,
  type RoomReplay,
  type ServerFrame,
  type StreamPosition,
  type SubscribeJobFrame,
  type SubscribeRoomFrame,
  type SubscribedFrame,
  type UnsubscribeJobFrame,
  type UnsubscribeRoomFrame,
  type UnsubscribedFrame,
} from "./frames";
export {
  applyEvent,
  emptyJobState,
  etaRemaining,
  fromSnapshot,
  isFinished,
  zonesInOrder,
  type ExportView,
  type JobError,
  type JobState,
  type ZoneView,
} from "./jobState";
export type { ClientStats, SubscribeOptions } from "./jobStore";
export type { NetworkMonitor } from "./network";
export { DEFAULT_OPTIONS, type ProgressClientOptions } from "./options";
export { ProgressClient } from "./ProgressClient";
export { compareStreamIds, parseStreamId, type StreamIdParts } from "./streamId";
export type { TokenSource, WebSocketConstructor, WebSocketLike } from "./transport";
export { parseServerFrame, type WireFormat } from "./wire";
