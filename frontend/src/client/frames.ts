/**
 * Frames of wire protocol v1 (docs/protocol.md). Event payloads come from the generated schema
 * types; only the envelopes are written here.
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

/** First frame of every connection. */
export interface HelloFrame {
  op: "hello";
  protocol: number;
  user: string;
  heartbeat_s: number;
  max_frame_bytes: number;
}

/** Answer to a `subscribe`. */
export interface SubscribedFrame {
  op: "subscribed";
  ref?: string | null;
  job_id?: string | null;
  room?: string | null;
  recovered: boolean;
  reason?: string | null;
  epoch?: string | null;
  snapshot?: JobSnapshot | null;
  jobs?: JobSnapshot[] | null;
  /** Room replies: the outcome of each job listed in `positions` (not yet in protocol.md). */
  replays?: RoomReplay[] | null;
}

/** Outcome of one job's resume inside a room subscribe. */
export interface RoomReplay {
  job_id: string;
  recovered: boolean;
  reason?: string | null;
  epoch?: string | null;
  snapshot?: JobSnapshot | null;
}

/** One event. */
export interface EventFrame {
  op: "event";
  event: ProgressEvent;
}

/** Several events in order. */
export interface BatchFrame {
  op: "batch";
  events: ProgressEvent[];
}

/** Answer to an `unsubscribe`. */
export interface UnsubscribedFrame {
  op: "unsubscribed";
  ref?: string | null;
  job_id?: string | null;
  room?: string | null;
}

/** A typed error; the connection stays open. */
export interface ErrorFrame {
  op: "error";
  ref?: string | null;
  code: string;
  message: string;
}

/** Heartbeat; answer with `pong`. */
export interface PingFrame {
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

/** Any frame the client may send. */
export type ClientFrame =
  | { op: "subscribe"; job_id: string; epoch?: string; last_id?: string; ref: string }
  | { op: "subscribe"; room: string; positions?: Record<string, StreamPosition>; ref: string }
  | { op: "unsubscribe"; job_id: string; ref: string }
  | { op: "unsubscribe"; room: string; ref: string }
  | { op: "ack"; job_id: string; id: string }
  | { op: "pong" };

const OPS = new Set(["hello", "subscribed", "event", "batch", "unsubscribed", "error", "ping"]);

/**
 * Parse one text frame. Only the envelope is checked (an object with a known `op`); payloads
 * are trusted to follow the schema the server validated them against.
 *
 * @returns the frame, or a string saying what is wrong with it.
 */
export function parseServerFrame(text: string): ServerFrame | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return "frame is not JSON";
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return "frame is not a JSON object";
  }
  const op = (data as { op?: unknown }).op;
  if (typeof op !== "string" || !OPS.has(op)) return `unknown op ${JSON.stringify(op)}`;
  if (op === "event" && typeof (data as { event?: unknown }).event !== "object") {
    return "event frame without event";
  }
  if (op === "batch" && !Array.isArray((data as { events?: unknown }).events)) {
    return "batch frame without events";
  }
  return data as ServerFrame;
}
