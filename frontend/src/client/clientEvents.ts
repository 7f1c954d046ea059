/** The events `ProgressClient` emits, and the payload each listener receives. */
import type { JobPresence, JobSnapshot, ProgressEvent } from "../generated/events.js";
import type { ClientState, TransportKind } from "./connectionState.js";
import type { ProgressClientError } from "./errors.js";
import type { JobState } from "./jobState.js";

/** Payload of the `state` event. */
export interface StateChange {
  /** State before the transition. */
  prev: ClientState;
  /** State after it. */
  next: ClientState;
  /** The transport the client uses (or tries) after it. */
  transport: TransportKind;
}

/** Payload of the `transport` event: the client moved to the other transport. */
export interface TransportChange {
  /** The transport it used (or tried) before. */
  prev: TransportKind;
  /** The transport it uses (or tries) now. */
  next: TransportKind;
  /** Why, for people: e.g. "3 WebSocket handshakes failed", "a WebSocket opened again". */
  reason: string;
}

/** Payload of the `snapshot` event: the job's state was replaced by a server snapshot. */
export interface SnapshotInfo {
  /** The job. */
  jobId: string;
  /** The snapshot that replaced the client's state. */
  snapshot: JobSnapshot;
  /** `false` when a resume position could not be honoured (then `reason` says why). */
  recovered: boolean;
  /** `ok`, `trimmed`, `epoch_changed`, `ahead` (or a room's own reason). */
  reason: string;
  /** The room whose `subscribed` carried the snapshot, if any. */
  room: string | null;
}

/** Payload of the `job` event: a job's derived state changed. */
export interface JobChange {
  /** The job. */
  jobId: string;
  /** Its new state. */
  state: JobState;
}

/** Payload of the `presence` event: who watches a job the client subscribed to changed. */
export interface PresenceChange {
  /** The job. */
  jobId: string;
  /** How many connections watch it, on every bridge (`users` for admins only). */
  presence: JobPresence;
}

/** Payload of the `room` event: the set of a room's jobs changed. */
export interface RoomChange {
  /** The room, e.g. `user:alice`. */
  room: string;
  /** Its jobs' states, newest first. */
  jobs: readonly JobState[];
}

/** Payload of the `retry` event: a reconnect attempt is scheduled. */
export interface RetryInfo {
  /** 1-based number of this attempt since the last stable connection. */
  attempt: number;
  /** Delay before it, in ms (`null` while offline: it waits for `online`). */
  delayMs: number | null;
  /** Close code of the connection that ended. */
  closeCode: number;
}

/** Events the client emits, and the payload each listener receives. */
export interface ProgressClientEvents {
  /** Connection state changed. */
  state: StateChange;
  /** The connection moved from WebSocket to SSE or back (`client.transport`). */
  transport: TransportChange;
  /** One new event (after de-duplication), in stream order per job. */
  event: ProgressEvent;
  /** A job's state was replaced by a server snapshot (first subscribe or `recovered: false`). */
  snapshot: SnapshotInfo;
  /** A job's derived state changed (after an event, a batch or a snapshot). */
  job: JobChange;
  /** A room's job list changed. */
  room: RoomChange;
  /** Who watches a subscribed job changed (the answer to its subscribe, then `presence` frames). */
  presence: PresenceChange;
  /** Something went wrong; the client may carry on (server error frames) or be closed. */
  error: ProgressClientError;
  /** A reconnect attempt was scheduled. */
  retry: RetryInfo;
}
