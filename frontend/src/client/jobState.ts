/**
 * A job's live state, computed from its events: a pure reducer shared by the client's job
 * store, the React hooks and the page.
 *
 * It mirrors `progress_bridge/events/snapshot.py`, so applying every event of a job to
 * `emptyJobState()` gives the same picture as `fromSnapshot()` of the server's snapshot, and a
 * client that switches from one to the other (recovered: false) sees no jump.
 *
 * One deliberate difference: once a job has its terminal event, what it is doing *now* (current
 * operation, current zone, ETA) is over. Parts of a split job still running when a cancel lands
 * report a few more zones and progress updates after it; their zones and percent are applied (the
 * work was done), but the current operation stays cleared, so no view shows "Extracting text
 * p54-z1" under a cancelled job. The server's snapshot keeps the late operation; `fromSnapshot`
 * clears it the same way.
 */
import type {
  ExportState,
  JobSnapshot,
  JobStatus,
  PageInfo,
  ProgressEvent,
  ZoneState,
} from "../generated/events.js";

/** A zone with every field present (`null` when unknown). */
export type ZoneView = Required<ZoneState>;

/** An export with every field present (`null` when unknown). */
export type ExportView = Required<ExportState>;

/** Why a job ended without success. */
export interface JobError {
  /** Exception class name (failed) or `"cancelled"`. */
  type: string;
  /** Human-readable message; may be empty for a cancel without reason. */
  message: string;
  /** The worker died and the job will not rerun. */
  lost: boolean;
}

/** Everything a view needs about one job; treat it as immutable. */
export interface JobState {
  /** The job's id. */
  jobId: string;
  /** Stream epoch of the last event or snapshot applied. */
  epoch: string | null;
  /** Stream id of the last event or snapshot applied. */
  lastId: string | null;
  /** Lifecycle status; once terminal it never changes. */
  status: JobStatus;
  /** Attempt number (1 for the first run; 0 before it started). */
  attempt: number;
  /** Overall progress, 0–100. */
  percent: number;
  /** What the worker says it is doing now. */
  currentOperation: string | null;
  /** Zone being processed now. */
  currentZone: string | null;
  /** Zones done, as the worker reported it. */
  zonesCompleted: number;
  /** Zones declared in total. */
  zonesTotal: number;
  /** Estimated seconds remaining, as of `etaTs`. */
  etaS: number | null;
  /** Unix time (seconds) at which `etaS` was stated. */
  etaTs: number | null;
  /** Pages by number, so zone boxes can be drawn to scale. */
  pages: readonly PageInfo[];
  /** Zones by id. */
  zones: Readonly<Record<string, ZoneView>>;
  /** Exports by id. */
  exports: Readonly<Record<string, ExportView>>;
  /** Why the job failed or was cancelled, else `null`. */
  error: JobError | null;
  /** Worker's summary of the result on success. */
  resultSummary: string | null;
  /** Owner's user name. */
  owner: string | null;
  /** Document the job works on. */
  documentId: string | null;
  /** Celery task name. */
  taskName: string | null;
  /** Unix time (s) the job was queued. */
  createdTs: number | null;
  /** Unix time (s) of the last change. */
  updatedTs: number | null;
}

const TERMINAL: ReadonlySet<JobStatus> = new Set<JobStatus>(["completed", "failed", "cancelled"]);

/** True once the job has its terminal event (completed, failed or cancelled). */
export function isFinished(state: Pick<JobState, "status">): boolean {
  return TERMINAL.has(state.status);
}

/** A job nothing is known about yet. */
export function emptyJobState(jobId: string): JobState {
  return {
    jobId,
    epoch: null,
    lastId: null,
    status: "queued",
    attempt: 0,
    percent: 0,
    currentOperation: null,
    currentZone: null,
    zonesCompleted: 0,
    zonesTotal: 0,
    etaS: null,
    etaTs: null,
    pages: [],
    zones: {},
    exports: {},
    error: null,
    resultSummary: null,
    owner: null,
    documentId: null,
    taskName: null,
    createdTs: null,
    updatedTs: null,
  };
}

function zoneView(zone: ZoneState): ZoneView {
  return {
    zone_id: zone.zone_id,
    index: zone.index,
    page: zone.page ?? null,
    kind: zone.kind ?? null,
    bbox: zone.bbox ?? null,
    status: zone.status ?? "pending",
    processing_tool: zone.processing_tool ?? null,
    confidence: zone.confidence ?? null,
    duration_ms: zone.duration_ms ?? null,
    error: zone.error ?? null,
    summary: zone.summary ?? null,
  };
}

/** A zone known only by id and index: pending, nothing else known (the snapshot's defaults). */
function pendingZone(zoneId: string, index: number): ZoneView {
  return {
    zone_id: zoneId,
    index,
    page: null,
    kind: null,
    bbox: null,
    status: "pending",
    processing_tool: null,
    confidence: null,
    duration_ms: null,
    error: null,
    summary: null,
  };
}

function exportView(exp: ExportState): ExportView {
  return {
    export_id: exp.export_id,
    format: exp.format,
    status: exp.status,
    percent: exp.percent ?? 0,
    size_bytes: exp.size_bytes ?? null,
    filename: exp.filename ?? null,
    error_message: exp.error_message ?? null,
  };
}

/** The state a `JobSnapshot` describes (REST `GET /api/jobs/{id}` or `subscribed.snapshot`). */
export function fromSnapshot(snapshot: JobSnapshot): JobState {
  const status = snapshot.status ?? "queued";
  const ended = TERMINAL.has(status);
  let error: JobError | null = null;
  if (status === "failed") {
    error = {
      type: snapshot.error_type ?? "Error",
      message: snapshot.error_message ?? "",
      lost: false,
    };
  } else if (status === "cancelled") {
    error = { type: "cancelled", message: snapshot.error_message ?? "", lost: false };
  }
  return {
    jobId: snapshot.job_id,
    epoch: snapshot.epoch,
    lastId: snapshot.last_id,
    status,
    attempt: snapshot.attempt ?? 0,
    percent: snapshot.percent ?? 0,
    currentOperation: ended ? null : (snapshot.current_operation ?? null),
    currentZone: ended ? null : (snapshot.current_zone ?? null),
    zonesCompleted: snapshot.zones_completed ?? 0,
    zonesTotal: snapshot.zones_total ?? 0,
    etaS: ended ? (status === "completed" ? 0 : null) : (snapshot.eta_s ?? null),
    etaTs: ended || snapshot.eta_s == null ? null : (snapshot.updated_ts ?? null),
    pages: [...(snapshot.pages ?? [])].sort((a, b) => a.number - b.number),
    zones: Object.fromEntries((snapshot.zones ?? []).map((z) => [z.zone_id, zoneView(z)])),
    exports: Object.fromEntries(
      (snapshot.exports ?? []).map((e) => [e.export_id, exportView(e)]),
    ),
    error,
    resultSummary: snapshot.result_summary ?? null,
    owner: snapshot.owner ?? null,
    documentId: snapshot.document_id ?? null,
    taskName: snapshot.task_name ?? null,
    createdTs: snapshot.created_ts ?? null,
    updatedTs: snapshot.updated_ts ?? null,
  };
}

function withStatus(state: JobState, status: JobStatus): JobStatus {
  // The server keeps the status once the job has its terminal event; so do we.
  return isFinished(state) ? state.status : status;
}

function upsertZone(
  zones: Readonly<Record<string, ZoneView>>,
  zoneId: string,
  index: number,
  patch: Partial<ZoneView>,
): Record<string, ZoneView> {
  const prev = zones[zoneId] ?? pendingZone(zoneId, index);
  return { ...zones, [zoneId]: { ...prev, ...patch } };
}

/**
 * The state after one event. Pure: returns a new object when something changed. Events of
 * another job are ignored. The caller is responsible for order and de-duplication (the client
 * does both).
 */
export function applyEvent(state: JobState, event: ProgressEvent): JobState {
  if (event.job_id !== state.jobId) return state;
  const ts = event.ts ?? state.updatedTs;
  const next: JobState = {
    ...state,
    epoch: event.epoch ?? state.epoch,
    lastId: event.id ?? state.lastId,
    updatedTs: ts,
    owner: event.owner ?? state.owner,
    documentId: event.document_id ?? state.documentId,
  };
  switch (event.type) {
    case "processing_queued":
      next.status = withStatus(state, "queued");
      next.taskName = event.task_name;
      next.createdTs = ts;
      break;
    case "processing_started":
      next.status = withStatus(state, "started");
      next.attempt = event.attempt ?? 1;
      break;
    case "processing_retrying":
      next.status = withStatus(state, "retrying");
      next.attempt = event.attempt - 1;
      break;
    case "processing_progress":
      next.percent = event.percent;
      if (event.zones_completed != null) next.zonesCompleted = event.zones_completed;
      if (event.zones_total != null) next.zonesTotal = event.zones_total;
      if (isFinished(state)) break; // Late news from a part: nothing is being done now.
      next.currentOperation = event.current_operation ?? null;
      next.currentZone = event.current_zone ?? null;
      next.etaS = event.eta_s ?? null;
      next.etaTs = event.eta_s == null ? null : ts;
      break;
    case "zones_declared": {
      let zones = state.zones;
      for (const zone of event.zones) {
        zones = upsertZone(zones, zone.zone_id, zone.index, {
          index: zone.index,
          page: zone.page ?? null,
          kind: zone.kind ?? null,
          bbox: zone.bbox ?? null,
        });
      }
      next.zones = zones;
      if (event.zones_total != null) next.zonesTotal = event.zones_total;
      if (event.pages && event.pages.length > 0) {
        const pages = new Map(state.pages.map((p) => [p.number, p]));
        for (const page of event.pages) pages.set(page.number, page);
        next.pages = [...pages.values()].sort((a, b) => a.number - b.number);
      }
      break;
    }
    case "zone_processing":
      // Like the snapshot, a new processing state clears the previous outcome (a retry).
      next.zones = upsertZone(state.zones, event.zone_id, event.zone_index, {
        status: "processing",
        processing_tool: event.processing_tool,
        confidence: null,
        duration_ms: null,
        error: null,
        summary: null,
        ...(state.zones[event.zone_id] ? {} : { page: event.page ?? null, kind: event.kind ?? null }),
      });
      if (!isFinished(state)) next.currentZone = event.zone_id;
      break;
    case "zone_completed":
      next.zones = upsertZone(state.zones, event.zone_id, event.zone_index, {
        status: event.status ?? "completed",
        processing_tool: event.processing_tool,
        confidence: event.confidence ?? null,
        duration_ms: event.duration_ms ?? null,
        error: event.error ?? null,
        summary: event.summary ?? null,
        ...(state.zones[event.zone_id] ? {} : { page: event.page ?? null }),
      });
      break;
    case "processing_completed":
      next.status = withStatus(state, "completed");
      next.percent = 100;
      next.etaS = 0;
      next.etaTs = null;
      next.resultSummary = event.result_summary ?? null;
      next.currentOperation = null;
      next.currentZone = null;
      break;
    case "processing_failed":
      next.status = withStatus(state, "failed");
      next.etaS = null;
      next.etaTs = null;
      next.currentOperation = null;
      next.currentZone = null;
      next.error = { type: event.error_type, message: event.error_message, lost: !!event.lost };
      break;
    case "processing_cancelled":
      next.status = withStatus(state, "cancelled");
      next.etaS = null;
      next.etaTs = null;
      next.currentOperation = null;
      next.currentZone = null;
      next.error = { type: "cancelled", message: event.reason ?? "", lost: false };
      break;
    case "export_started":
    case "export_progress":
    case "export_completed":
    case "export_failed": {
      // Every field, as in the snapshot's ExportState (defaults: percent 0, the rest null).
      const base: ExportState = {
        export_id: event.export_id,
        format: event.format,
        status: "started",
        percent: 0,
        size_bytes: null,
        filename: null,
        error_message: null,
      };
      let view: ExportView;
      if (event.type === "export_started") {
        view = exportView(base);
      } else if (event.type === "export_progress") {
        view = exportView({ ...base, percent: event.percent });
      } else if (event.type === "export_completed") {
        view = exportView({
          ...base,
          status: "completed",
          percent: 100,
          size_bytes: event.size_bytes,
          filename: event.filename,
        });
      } else {
        view = exportView({ ...base, status: "failed", error_message: event.error_message });
      }
      next.exports = { ...state.exports, [event.export_id]: view };
      break;
    }
  }
  return next;
}

/** Zones in reading order (by `index`). */
export function zonesInOrder(state: JobState): ZoneView[] {
  return Object.values(state.zones).sort((a, b) => a.index - b.index);
}

/**
 * Seconds left according to the last ETA, counted down to `nowMs` (a Unix time in ms);
 * `null` when no ETA is known.
 */
export function etaRemaining(state: JobState, nowMs: number): number | null {
  if (state.etaS == null) return null;
  if (state.etaTs == null) return state.etaS;
  return Math.max(0, state.etaS - (nowMs / 1000 - state.etaTs));
}
