/**
 * Frames of wire protocol v1 (docs/protocol.md): types and constants only, no code.
 *
 * Hand-written for now. A later step generates them from the bridge's pydantic models into
 * `src/generated/`, and this module then only re-exports them; parsing and validation live in
 * `wire.ts`, which imports nothing else from here but types. The generated module must provide,
 * under these names: every frame interface below, each with its literal `op`, and the unions
 * `ServerFrame` and `ClientFrame` (discriminated on `op`); `StreamPosition`; `RoomReplay`;
 * `ErrorCode` (the `error` frame's codes) and `ReplayReason` (`subscribed.reason`) as string
 * unions; `CloseCode` values; and, if the generator can emit constants, `PROTOCOL_VERSION` and
 * the subprotocol names (else they stay here).
 */
import type { JobSnapshot, ProgressEvent } from "../generated/events";

/** Protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;
/** Subprotocol for JSON text frames. */
export const JSON_SUBPROTOCOL = "progress.v1.json";
/** Prefix of the subprotocol that carries the token. */
export const TOKEN_SUBPROTOCOL_PREFIX = "token.";

/** A stream position: the epoch and the last id applied. */
export interface StreamPosition {
  /** Token of the job stream's lifetime. */
  epoch: string;
  /** Greatest stream id applied (e.g. `"1718000000000-3"`). */
  last_id: string;
}

// ── server → client ─────────────────────────────────────────────────────────────────────────

/** First frame of every connection. */
export interface HelloFrame {
  /** Frame tag. */
  op: "hello";
  /** Protocol version the server speaks. */
  protocol: number;
  /** User name the token stands for. */
  user: string;
  /** The server pings this often, in seconds. */
  heartbeat_s: number;
  /** Largest client frame the server accepts, in bytes. */
  max_frame_bytes: number;
}

/** Answer to a `subscribe`. */
export interface SubscribedFrame {
  /** Frame tag. */
  op: "subscribed";
  /** The `ref` of the subscribe it answers. */
  ref?: string | null;
  /** The job, for a job subscribe. */
  job_id?: string | null;
  /** The room, for a room subscribe. */
  room?: string | null;
  /** Whether the position sent could be honoured. */
  recovered: boolean;
  /** `ok`, `trimmed`, `epoch_changed` or `ahead`. */
  reason?: string | null;
  /** The job stream's current epoch (`null` for rooms). */
  epoch?: string | null;
  /** The job's state, on a first subscribe or when `recovered` is false (`null` for rooms). */
  snapshot?: JobSnapshot | null;
  /** Room replies: snapshots of the room's jobs not listed in `positions`. */
  jobs?: JobSnapshot[] | null;
  /** Room replies: the outcome of each job listed in `positions`. */
  replays?: RoomReplay[] | null;
}

/** Outcome of one job's resume inside a room subscribe. */
export interface RoomReplay {
  /** The job. */
  job_id: string;
  /** Whether its position could be honoured. */
  recovered: boolean;
  /** `ok`, `trimmed`, `epoch_changed` or `ahead`. */
  reason?: string | null;
  /** The job stream's current epoch. */
  epoch?: string | null;
  /** The job's state when `recovered` is false. */
  snapshot?: JobSnapshot | null;
}

/** One event. */
export interface EventFrame {
  /** Frame tag. */
  op: "event";
  /** The event, with its stream `id` and `epoch`. */
  event: ProgressEvent;
}

/** Several events in order. */
export interface BatchFrame {
  /** Frame tag. */
  op: "batch";
  /** The events, oldest first. */
  events: ProgressEvent[];
}

/** Answer to an `unsubscribe`. */
export interface UnsubscribedFrame {
  /** Frame tag. */
  op: "unsubscribed";
  /** The `ref` of the unsubscribe it answers. */
  ref?: string | null;
  /** The job, for a job unsubscribe. */
  job_id?: string | null;
  /** The room, for a room unsubscribe. */
  room?: string | null;
}

/** A typed error; the connection stays open. */
export interface ErrorFrame {
  /** Frame tag. */
  op: "error";
  /** The `ref` of the client frame it answers, if that frame had one. */
  ref?: string | null;
  /** Machine-readable code (`forbidden`, `not_found`, …): match on this. */
  code: string;
  /** For people. */
  message: string;
}

/** Heartbeat; answer with `pong`. */
export interface PingFrame {
  /** Frame tag. */
  op: "ping";
}

/** Any frame the server may send. */
export type ServerFrame =
  | HelloFrame
  | SubscribedFrame
  | EventFrame
  | BatchFrame
  | UnsubscribedFrame
  | ErrorFrame
  | PingFrame;

// ── client → server ─────────────────────────────────────────────────────────────────────────

/** Watch one job; with `epoch` and `last_id`, resume after that position. */
export interface SubscribeJobFrame {
  /** Frame tag. */
  op: "subscribe";
  /** The job. */
  job_id: string;
  /** Epoch of the position to resume from (always together with `last_id`). */
  epoch?: string;
  /** Last id applied (always together with `epoch`). */
  last_id?: string;
  /** Copied into the reply. */
  ref: string;
}

/** Watch every job of a room; jobs in `positions` are resumed from their own position. */
export interface SubscribeRoomFrame {
  /** Frame tag. */
  op: "subscribe";
  /** `user:<name>` or `document:<id>`. */
  room: string;
  /** Resume positions of the room's jobs the client holds, by job id. */
  positions?: Record<string, StreamPosition>;
  /** Copied into the reply. */
  ref: string;
}

/** Stop watching one job. */
export interface UnsubscribeJobFrame {
  /** Frame tag. */
  op: "unsubscribe";
  /** The job. */
  job_id: string;
  /** Copied into the reply. */
  ref: string;
}

/** Stop watching a room. */
export interface UnsubscribeRoomFrame {
  /** Frame tag. */
  op: "unsubscribe";
  /** The room. */
  room: string;
  /** Copied into the reply. */
  ref: string;
}

/** Delivery confirmation: the client has rendered the job up to `id` (no reply). */
export interface AckFrame {
  /** Frame tag. */
  op: "ack";
  /** The job. */
  job_id: string;
  /** Last id applied. */
  id: string;
}

/** Answer to `ping`. */
export interface PongFrame {
  /** Frame tag. */
  op: "pong";
}

/** Any frame the client may send. */
export type ClientFrame =
  | SubscribeJobFrame
  | SubscribeRoomFrame
  | UnsubscribeJobFrame
  | UnsubscribeRoomFrame
  | AckFrame
  | PongFrame;
