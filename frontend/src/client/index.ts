export { backoffCeiling, backoffDelay, type BackoffOptions } from "./backoff";
export type {
  JobChange,
  ProgressClientEvents,
  RetryInfo,
  RoomChange,
  SnapshotInfo,
  StateChange,
} from "./clientEvents";
export { CloseCode, closeAction, type CloseAction } from "./closeCodes";
export {
  STATE_TRANSITIONS,
  canTransition,
  checkTransition,
  type ClientState,
} from "./connectionState";
export {
  AuthenticationError,
  ConnectionForbiddenError,
  IllegalTransitionError,
  ProgressClientError,
  ProtocolViolationError,
  ServerError,
} from "./errors";
export {
  JSON_SUBPROTOCOL,
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
export { type ClientStats, type SubscribeOptions } from "./jobStore";
export {
  DEFAULT_OPTIONS,
  ProgressClient,
  type NetworkMonitor,
  type ProgressClientOptions,
  type TokenSource,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./ProgressClient";
export { compareStreamIds, parseStreamId, type StreamIdParts } from "./streamId";
export { encodeClientFrame, parseServerFrame } from "./wire";
