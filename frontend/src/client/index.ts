/**
 * The framework-free client: public names only (modules not listed here are internal).
 */
export { backoffCeiling, backoffDelay, type BackoffOptions } from "./backoff.js";
export type {
  JobChange,
  ProgressClientEvents,
  RetryInfo,
  PresenceChange,
  RoomChange,
  SnapshotInfo,
  StateChange,
  TransportChange,
} from "./clientEvents.js";
export { CloseCode, closeAction, SERVER_CLOSE_ACTIONS, type CloseAction } from "./closeCodes.js";
export type { TransportMode } from "./connection.js";
export { STATE_TRANSITIONS, type ClientState, type TransportKind } from "./connectionState.js";
export {
  AuthenticationError,
  ConnectionForbiddenError,
  IllegalTransitionError,
  ProgressClientError,
  ProtocolViolationError,
  ServerError,
} from "./errors.js";
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
  type SseCloseFrame,
  type SseFrame,
  type StreamPosition,
  type SubscribeJobFrame,
  type SubscribeRoomFrame,
  type SubscribedFrame,
  type UnsubscribeJobFrame,
  type UnsubscribeRoomFrame,
  type UnsubscribedFrame,
} from "./frames.js";
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
} from "./jobState.js";
export type { ClientStats, SubscribeOptions } from "./jobStore.js";
export type { NetworkMonitor } from "./network.js";
export { DEFAULT_OPTIONS, type ProgressClientOptions } from "./options.js";
export { ProgressClient } from "./ProgressClient.js";
export type { TokenSource } from "./reconnectingTransport.js";
export type { FetchAnswer, FetchLike } from "./sseRefusal.js";
export type { EventSourceConstructor, EventSourceLike } from "./sseTransport.js";
export { SSE_JOBS_PER_STREAM, sseUrlFor } from "./sseUrl.js";
export { compareStreamIds, parseStreamId, type StreamIdParts } from "./streamId.js";
export type { WebSocketConstructor, WebSocketLike } from "./transport.js";
export { parseServerFrame, parseSseFrame, type WireFormat } from "./wire.js";
