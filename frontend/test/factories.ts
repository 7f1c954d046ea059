/**
 * Typed factories for wire objects in tests: events, zones and snapshots with every field present,
 * as the server sends them. Each default is the pydantic model's default
 * (`progress_bridge/events.py`, `progress_bridge/snapshot.py`); `factories.test.ts` checks them
 * against the exported JSON Schema, so a new field or a changed default fails there first.
 */
import type {
  JobSnapshot,
  ProgressEvent,
  ZoneInfo,
  ZoneState,
} from "../src/generated/events";

/** The `type` tag of every event. */
export type EventType = ProgressEvent["type"];

/** The event interface of one `type`. */
export type EventOf<T extends EventType> = Extract<ProgressEvent, { type: T }>;

/** `_Event.v` default (`SCHEMA_VERSION`). */
export const SCHEMA_VERSION = 1;

/** The envelope fields with a default (`job_id` has none). `ts` is `time.time()` in Python. */
function envelopeDefaults() {
  return {
    v: SCHEMA_VERSION,
    id: null,
    epoch: null,
    parent_id: null,
    root_id: null,
    document_id: null,
    owner: null,
    ts: Date.now() / 1000,
  } satisfies Partial<ProgressEvent>;
}

/** Each event type's own fields with a default; functions, so lists are fresh every time. */
const BODY_DEFAULTS = {
  processing_queued: () => ({}),
  processing_started: () => ({ attempt: 1, worker: null }),
  processing_progress: () => ({
    current_operation: null,
    current_zone: null,
    zones_completed: null,
    zones_total: null,
    eta_s: null,
  }),
  zones_declared: () => ({ pages: [], zones_total: null }),
  zone_processing: () => ({ page: null, kind: null }),
  zone_completed: () => ({
    page: null,
    status: "completed" as const,
    confidence: null,
    duration_ms: null,
    error: null,
    summary: null,
  }),
  processing_retrying: () => ({ countdown_s: null }),
  processing_completed: () => ({ result_summary: null, duration_ms: null }),
  processing_failed: () => ({ lost: false }),
  processing_cancelled: () => ({ reason: null }),
  export_started: () => ({}),
  export_progress: () => ({}),
  export_completed: () => ({}),
  export_failed: () => ({}),
} satisfies { [T in EventType]: () => Partial<EventOf<T>> };

type Defaulted<T extends EventType> =
  | keyof ReturnType<typeof envelopeDefaults>
  | keyof ReturnType<(typeof BODY_DEFAULTS)[T]>;

/**
 * What `makeEvent(type, …)` needs: every field without a default (as in Python, `job_id`
 * included), and optionally any field that has one.
 */
export type EventFields<T extends EventType> = Omit<EventOf<T>, "type" | Defaulted<T>> &
  Partial<Omit<EventOf<T>, "type">>;

/** `EventFields` of any type, tagged with its `type` (for lists of mixed events). */
export type EventInput = { [T in EventType]: { type: T } & EventFields<T> }[EventType];

/** A complete event of `type`: `fields` over the model's defaults. */
export function makeEvent<T extends EventType>(type: T, fields: EventFields<T>): EventOf<T> {
  return build(type, fields) as EventOf<T>;
}

/** `makeEvent` for an input tagged with its own `type` (e.g. one of a list of mixed events). */
export function eventFrom(input: EventInput): ProgressEvent {
  return build(input.type, input);
}

function build(type: EventType, fields: object): ProgressEvent {
  // The one cast: TypeScript cannot relate `type` to the union member it selects. The callers'
  // signatures make them supply every field without a default, and the defaults tables cover
  // the rest (factories.test.ts compares them with the schema).
  return { ...envelopeDefaults(), ...BODY_DEFAULTS[type](), ...fields, type } as ProgressEvent;
}

/** A declared zone (`ZoneInfo`); `page`, `kind` and `bbox` default to `null`. */
export function makeZoneInfo(
  fields: Pick<ZoneInfo, "zone_id" | "index"> & Partial<ZoneInfo>,
): ZoneInfo {
  return { page: null, kind: null, bbox: null, ...fields };
}

/** A snapshot's zone (`ZoneState`), pending unless said otherwise. */
export function makeZoneState(
  fields: Pick<ZoneState, "zone_id" | "index"> & Partial<ZoneState>,
): ZoneState {
  return {
    page: null,
    kind: null,
    bbox: null,
    status: "pending",
    processing_tool: null,
    confidence: null,
    duration_ms: null,
    error: null,
    summary: null,
    ...fields,
  };
}

/** A job snapshot (`JobSnapshot`): the job's stream position plus any fields to set. */
export function makeSnapshot(
  fields: Pick<JobSnapshot, "job_id" | "epoch" | "last_id"> & Partial<JobSnapshot>,
): JobSnapshot {
  return {
    status: "queued",
    owner: null,
    document_id: null,
    parent_id: null,
    root_id: null,
    task_name: null,
    attempt: 0,
    percent: 0,
    current_operation: null,
    current_zone: null,
    zones_completed: 0,
    zones_total: 0,
    eta_s: null,
    result_summary: null,
    error_type: null,
    error_message: null,
    created_ts: null,
    updated_ts: null,
    pages: [],
    zones: [],
    exports: [],
    ...fields,
  };
}
