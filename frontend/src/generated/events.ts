/* eslint-disable */
/**
 * GENERATED FILE - DO NOT EDIT.
 *
 * Source: progress_bridge.events.json_schema() (pydantic), via scripts/gen_types and
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
 * Index of the generated types (not a wire frame).
 */
export interface ProgressBridgeTypes {
  event: ProgressEvent;
  snapshot: JobSnapshot;
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
