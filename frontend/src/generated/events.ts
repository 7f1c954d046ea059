/* eslint-disable */
/**
 * GENERATED FILE - DO NOT EDIT.
 *
 * Source: progress_bridge.bridge.core.frames.protocol_schema() (pydantic), via scripts/gen_types and
 * json-schema-to-typescript. Regenerate with `npm run gen`; `npm run gen:check` fails on drift.
 */

/**
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ProgressEvent".
 */
export type ProgressEvent =
  | ProcessingQueued
  | ProcessingStarted
  | ProcessingProgress
  | ZonesDeclared
  | ZoneProcessing
  | ZoneCompleted
  | ProcessingRetrying
  | ProcessingCompleted
  | ProcessingFailed
  | ProcessingCancelled
  | ExportStarted
  | ExportProgress
  | ExportCompleted
  | ExportFailed;
/**
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ExportFormat".
 */
export type ExportFormat = "json" | "markdown" | "csv";
/**
 * Where a job is in its life; the last three are terminal.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "JobStatus".
 */
export type JobStatus = "queued" | "started" | "retrying" | "completed" | "failed" | "cancelled";
/**
 * Where one zone is; a zone moves pending → processing → completed | failed.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ZoneStatus".
 */
export type ZoneStatus = "pending" | "processing" | "completed" | "failed";
/**
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ServerFrame".
 */
export type ServerFrame =
  | HelloFrame
  | SubscribedFrame
  | EventFrame
  | BatchFrame
  | UnsubscribedFrame
  | ErrorFrame
  | PresenceFrame
  | PingFrame;
/**
 * The ``code`` of an ``error`` frame; the connection stays open after any of them.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ErrorCode".
 */
export type ErrorCode =
  | "bad_json"
  | "bad_frame"
  | "unknown_op"
  | "invalid_position"
  | "not_found"
  | "forbidden"
  | "too_many_subscriptions"
  | "rate_limited"
  | "unavailable"
  | "internal";
/**
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ClientFrame".
 */
export type ClientFrame =
  | SubscribeJobFrame
  | SubscribeRoomFrame
  | UnsubscribeJobFrame
  | UnsubscribeRoomFrame
  | AckFrame
  | PongFrame;
/**
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "SseFrame".
 */
export type SseFrame =
  SubscribedFrame | EventFrame | BatchFrame | ErrorFrame | PresenceFrame | SseCloseFrame;
/**
 * WebSocket close codes the bridge sends.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ServerCloseCode".
 */
export type ServerCloseCode = 1000 | 1009 | 1011 | 1012 | 4000 | 4001 | 4003 | 4008 | 4009 | 4029;

/**
 * Index of the generated types (not a wire frame).
 */
export interface ProgressBridgeTypes {
  event: ProgressEvent;
  snapshot: JobSnapshot;
  server_frame: ServerFrame;
  client_frame: ClientFrame;
  sse_frame: SseFrame;
  close_code: ServerCloseCode;
}
/**
 * The task was published (publisher side).
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ProcessingQueued".
 */
export interface ProcessingQueued {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  type: "processing_queued";
  task_name: string;
}
/**
 * A worker started an attempt; a redelivered message starts a new attempt.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ProcessingStarted".
 */
export interface ProcessingStarted {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  type: "processing_started";
  attempt: number;
  worker: string | null;
}
/**
 * Overall progress; rapid updates coalesce (latest wins).
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ProcessingProgress".
 */
export interface ProcessingProgress {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  type: "processing_progress";
  percent: number;
  current_operation: string | null;
  current_zone: string | null;
  zones_completed: number | null;
  zones_total: number | null;
  /**
   * Estimated seconds remaining.
   */
  eta_s: number | null;
}
/**
 * The zones the job will process (may be sent once per page as pages are analysed).
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ZonesDeclared".
 */
export interface ZonesDeclared {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  type: "zones_declared";
  /**
   * @maxItems 10000
   */
  zones: ZoneInfo[];
  /**
   * @maxItems 10000
   */
  pages: PageInfo[];
  /**
   * Zones declared so far.
   */
  zones_total: number | null;
}
/**
 * A zone as declared before processing: where it is and what it looks like.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ZoneInfo".
 */
export interface ZoneInfo {
  zone_id: string;
  /**
   * Position in reading order, 0-based, unique per job.
   */
  index: number;
  /**
   * 1-based page number.
   */
  page: number | null;
  /**
   * text, table, figure, …
   */
  kind: string | null;
  /**
   * x0, top, x1, bottom in PDF points from the page's top-left.
   */
  bbox: [number, number, number, number] | null;
}
/**
 * A page's size, so a viewer can draw zone boxes to scale.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "PageInfo".
 */
export interface PageInfo {
  number: number;
  /**
   * Points.
   */
  width: number;
  /**
   * Points.
   */
  height: number;
}
/**
 * A zone's processing began.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ZoneProcessing".
 */
export interface ZoneProcessing {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  type: "zone_processing";
  zone_id: string;
  zone_index: number;
  page: number | null;
  kind: string | null;
  processing_tool: string;
}
/**
 * A zone finished, successfully or not (``status``).
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ZoneCompleted".
 */
export interface ZoneCompleted {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  type: "zone_completed";
  zone_id: string;
  zone_index: number;
  page: number | null;
  processing_tool: string;
  status: "completed" | "failed";
  confidence: number | null;
  duration_ms: number | null;
  error: string | null;
  /**
   * A short preview of the result.
   */
  summary: string | null;
}
/**
 * An attempt failed and another is scheduled; not an end.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ProcessingRetrying".
 */
export interface ProcessingRetrying {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  type: "processing_retrying";
  /**
   * Number of the attempt that comes next.
   */
  attempt: number;
  reason: string;
  countdown_s: number | null;
}
/**
 * Terminal: the job succeeded.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ProcessingCompleted".
 */
export interface ProcessingCompleted {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  type: "processing_completed";
  result_summary: string | null;
  duration_ms: number | null;
}
/**
 * Terminal: the job failed. Never carries a traceback.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ProcessingFailed".
 */
export interface ProcessingFailed {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  type: "processing_failed";
  error_type: string;
  error_message: string;
  /**
   * The worker died and the job will not rerun.
   */
  lost: boolean;
}
/**
 * Terminal: the job was revoked.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ProcessingCancelled".
 */
export interface ProcessingCancelled {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  type: "processing_cancelled";
  reason: string | null;
}
/**
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ExportStarted".
 */
export interface ExportStarted {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  export_id: string;
  format: ExportFormat;
  type: "export_started";
}
/**
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ExportProgress".
 */
export interface ExportProgress {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  export_id: string;
  format: ExportFormat;
  type: "export_progress";
  percent: number;
}
/**
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ExportCompleted".
 */
export interface ExportCompleted {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  export_id: string;
  format: ExportFormat;
  type: "export_completed";
  size_bytes: number;
  filename: string;
}
/**
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ExportFailed".
 */
export interface ExportFailed {
  /**
   * Schema version.
   */
  v: number;
  /**
   * Stream position; strictly increasing.
   */
  id: string | null;
  /**
   * Token of the job stream's lifetime.
   */
  epoch: string | null;
  /**
   * Celery task id of the job.
   */
  job_id: string;
  parent_id: string | null;
  root_id: string | null;
  document_id: string | null;
  owner: string | null;
  /**
   * Unix time, seconds.
   */
  ts: number;
  export_id: string;
  format: ExportFormat;
  type: "export_failed";
  error_message: string;
}
/**
 * Latest state of one job plus its stream position (``epoch``, ``last_id``).
 *
 * A client that renders this and then subscribes with ``(epoch, last_id)`` misses nothing.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "JobSnapshot".
 */
export interface JobSnapshot {
  job_id: string;
  epoch: string;
  last_id: string;
  status: JobStatus;
  owner: string | null;
  document_id: string | null;
  parent_id: string | null;
  root_id: string | null;
  task_name: string | null;
  attempt: number;
  percent: number;
  current_operation: string | null;
  current_zone: string | null;
  zones_completed: number;
  zones_total: number;
  eta_s: number | null;
  result_summary: string | null;
  error_type: string | null;
  error_message: string | null;
  created_ts: number | null;
  updated_ts: number | null;
  pages: PageInfo[];
  /**
   * In index order.
   */
  zones: ZoneState[];
  exports: ExportState[];
}
/**
 * A zone as the snapshot knows it: declared shape plus latest progress.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ZoneState".
 */
export interface ZoneState {
  zone_id: string;
  index: number;
  page: number | null;
  kind: string | null;
  bbox: [number, number, number, number] | null;
  status: ZoneStatus;
  processing_tool: string | null;
  confidence: number | null;
  duration_ms: number | null;
  error: string | null;
  summary: string | null;
}
/**
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ExportState".
 */
export interface ExportState {
  export_id: string;
  format: ExportFormat;
  /**
   * started, completed or failed
   */
  status: string;
  percent: number;
  size_bytes: number | null;
  filename: string | null;
  error_message: string | null;
}
/**
 * The first frame of every connection.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "HelloFrame".
 */
export interface HelloFrame {
  op: "hello";
  protocol: number;
  user: string;
  heartbeat_s: number;
  max_frame_bytes: number;
}
/**
 * The answer to a subscribe: for a job (``job_id``) or a room (``room``, ``jobs``,
 * ``replays``). ``recovered: false`` always comes with a ``snapshot`` (per job for rooms).
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "SubscribedFrame".
 */
export interface SubscribedFrame {
  op: "subscribed";
  /**
   * Copied from the client frame into its answer (at most 64 characters).
   */
  ref: string | number | null;
  job_id?: string | null;
  room?: string | null;
  recovered: boolean;
  reason: "ok" | "epoch_changed" | "trimmed" | "ahead";
  epoch: string | null;
  snapshot: JobSnapshot | null;
  jobs?: JobSnapshot[] | null;
  replays?: RoomReplay[] | null;
  presence?: JobPresence | null;
}
/**
 * How one job of a room subscribe's ``positions`` was resumed.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "RoomReplay".
 */
export interface RoomReplay {
  job_id: string;
  recovered: boolean;
  reason: "ok" | "epoch_changed" | "trimmed" | "ahead";
  epoch: string | null;
  snapshot: JobSnapshot | null;
}
/**
 * Who watches a job across every bridge process: connections subscribed to it by id, and
 * (for admins only) their users' names.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "JobPresence".
 */
export interface JobPresence {
  watching: number;
  users?: string[] | null;
}
/**
 * One event, with its ``id`` and ``epoch``.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "EventFrame".
 */
export interface EventFrame {
  op: "event";
  event: ProgressEvent;
}
/**
 * Several events, in order, in one frame (sent to connections that lag).
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "BatchFrame".
 */
export interface BatchFrame {
  op: "batch";
  events: ProgressEvent[];
}
/**
 * The answer to an unsubscribe.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "UnsubscribedFrame".
 */
export interface UnsubscribedFrame {
  op: "unsubscribed";
  /**
   * Copied from the client frame into its answer (at most 64 characters).
   */
  ref: string | number | null;
  job_id?: string | null;
  room?: string | null;
}
/**
 * A refused frame; the connection stays open. Match on ``code``; ``message`` is for
 * people.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "ErrorFrame".
 */
export interface ErrorFrame {
  op: "error";
  /**
   * Copied from the client frame into its answer (at most 64 characters).
   */
  ref: string | number | null;
  code: ErrorCode;
  message: string;
}
/**
 * Who watches a job the client subscribed to, when it changes (at most one per
 * ``presence_interval_s`` per job): ``watching`` connections, ``users`` for admins.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "PresenceFrame".
 */
export interface PresenceFrame {
  op: "presence";
  job_id: string;
  watching: number;
  users?: string[] | null;
}
/**
 * Heartbeat, every ``heartbeat_s``; answer with ``pong``.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "PingFrame".
 */
export interface PingFrame {
  op: "ping";
}
/**
 * Watch one job; with a position, resume after it (``docs/protocol.md``, *Replay*).
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "SubscribeJobFrame".
 */
export interface SubscribeJobFrame {
  op: "subscribe";
  job_id: string;
  epoch?: string | null;
  last_id?: string | null;
  presence?: boolean;
  /**
   * Copied from the client frame into its answer (at most 64 characters).
   */
  ref?: string | number | null;
}
/**
 * Watch every job of a user (``user:<name>``) or a document (``document:<id>``).
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "SubscribeRoomFrame".
 */
export interface SubscribeRoomFrame {
  op: "subscribe";
  room: string;
  positions?: {
    [k: string]: StreamPosition | undefined;
  } | null;
  /**
   * Copied from the client frame into its answer (at most 64 characters).
   */
  ref?: string | number | null;
}
/**
 * A position in a job's stream: the epoch and the last id the client applied.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "StreamPosition".
 */
export interface StreamPosition {
  epoch: string;
  /**
   * '<ms>-<seq>'
   */
  last_id: string;
}
/**
 * Stop watching a job.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "UnsubscribeJobFrame".
 */
export interface UnsubscribeJobFrame {
  op: "unsubscribe";
  job_id: string;
  /**
   * Copied from the client frame into its answer (at most 64 characters).
   */
  ref?: string | number | null;
}
/**
 * Stop watching a room.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "UnsubscribeRoomFrame".
 */
export interface UnsubscribeRoomFrame {
  op: "unsubscribe";
  room: string;
  /**
   * Copied from the client frame into its answer (at most 64 characters).
   */
  ref?: string | number | null;
}
/**
 * The client has rendered the job up to ``id`` (metrics and the admin view; no answer).
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "AckFrame".
 */
export interface AckFrame {
  op: "ack";
  job_id: string;
  /**
   * '<ms>-<seq>'
   */
  id: string;
}
/**
 * Answer to ``ping`` (any frame proves the client alive).
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "PongFrame".
 */
export interface PongFrame {
  op: "pong";
}
/**
 * ``GET /sse`` only: the last message of a stream the bridge ends (slow consumer, token
 * expired, restart), with the WebSocket close code that says what the client should do.
 *
 * This interface was referenced by `ProgressBridgeTypes`'s JSON-Schema
 * via the `definition` "SseCloseFrame".
 */
export interface SseCloseFrame {
  op: "close";
  /**
   * A close code of the WebSocket table (ServerCloseCode).
   */
  code: number;
  reason: string;
}
