/**
 * The wire formats (docs/protocol.md, "Wire format"): the one place data from the socket becomes
 * a typed frame, and a frame becomes data to send.
 *
 * `progress.v1.json` sends text frames; `progress.v1.msgpack` binary frames holding the same
 * maps. The msgpack codec lives in `msgpackCodec.ts` and is loaded only when asked for, so a JSON
 * client does not carry it. Validation is deliberately shallow: the envelope (an object with a
 * known `op`) and the fields the client acts on, each with its kind. Event payloads are trusted
 * to follow the schema the server validated them against.
 */
import { JSON_SUBPROTOCOL, type ClientFrame, type ServerFrame, type SseFrame } from "./frames.js";

/** A wire format the bridge offers: `"json"` (text frames) or `"msgpack"` (binary frames). */
export type WireFormat = "json" | "msgpack";

/** How frames of one format travel. */
export interface WireCodec {
  /** The format's name. */
  readonly format: WireFormat;
  /** The subprotocol that asks the bridge for it. */
  readonly subprotocol: string;
  /** One client frame as the socket sends it. */
  encode(frame: ClientFrame): string | Uint8Array;
  /** One message as the socket delivered it: the frame, or a string saying what is wrong. */
  decode(data: unknown): ServerFrame | string;
}

/** JSON kinds a required field may have. */
type FieldKind = "string" | "number" | "boolean" | "object" | "array";

/** Per server op, the fields the client relies on and their kinds (optional fields are absent). */
const REQUIRED_FIELDS: { readonly [Op in ServerFrame["op"]]: Readonly<Record<string, FieldKind>> } = {
  hello: { protocol: "number", user: "string", heartbeat_s: "number", max_frame_bytes: "number" },
  subscribed: { recovered: "boolean" },
  event: { event: "object" },
  batch: { events: "array" },
  unsubscribed: {},
  error: { code: "string", message: "string" },
  presence: { job_id: "string", watching: "number" },
  ping: {},
};

function kindOf(value: unknown): FieldKind | "null" | "other" {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  const type = typeof value;
  if (type === "string" || type === "boolean" || type === "object") return type;
  if (type === "number") return Number.isFinite(value) ? "number" : "other";
  return "other";
}

/**
 * Check one decoded frame (a JSON object or a msgpack map).
 *
 * @param container what a frame must be, for the message ("JSON object", "msgpack map").
 * @returns the frame, or a string saying what is wrong with it.
 */
export function checkServerFrame(data: unknown, container = "JSON object"): ServerFrame | string {
  if (kindOf(data) !== "object") return `frame is not a ${container}`;
  const record = data as Record<string, unknown>;
  const op = record.op;
  if (typeof op !== "string" || !Object.hasOwn(REQUIRED_FIELDS, op)) {
    return `unknown op ${JSON.stringify(op)}`;
  }
  for (const [field, kind] of Object.entries(REQUIRED_FIELDS[op as ServerFrame["op"]])) {
    if (kindOf(record[field]) !== kind) return `${op} frame without ${kind} field ${field}`;
  }
  return data as ServerFrame;
}

/**
 * Parse one JSON text frame.
 *
 * @returns the frame, or a string saying what is wrong with it (for a `ProtocolViolationError`).
 */
export function parseServerFrame(text: string): ServerFrame | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return "frame is not JSON";
  }
  return checkServerFrame(data);
}

/** The ops an SSE message may carry: the server's frames but `hello` and `ping`, and `close`. */
const SSE_OPS: ReadonlySet<string> = new Set(["subscribed", "event", "batch", "error", "presence", "close"]);

/**
 * Parse one SSE message's `data` (`GET /sse`, docs/protocol.md "Server-Sent Events").
 *
 * @returns the frame, or a string saying what is wrong with it.
 */
export function parseSseFrame(text: string): SseFrame | string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return "SSE message is not JSON";
  }
  if (kindOf(data) !== "object") return "SSE message is not a JSON object";
  const record = data as Record<string, unknown>;
  if (typeof record.op !== "string" || !SSE_OPS.has(record.op)) {
    return `unknown op ${JSON.stringify(record.op)} on an SSE stream`;
  }
  if (record.op === "close") {
    if (kindOf(record.code) !== "number") return "close frame without number field code";
    if (kindOf(record.reason) !== "string") return "close frame without string field reason";
    return data as SseFrame;
  }
  return checkServerFrame(data) as SseFrame | string;
}

/** The text frame for one client frame. */
export function encodeClientFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}

/** `progress.v1.json`: text frames. */
export const jsonCodec: WireCodec = {
  format: "json",
  subprotocol: JSON_SUBPROTOCOL,
  encode: encodeClientFrame,
  decode: (data) => (typeof data === "string" ? parseServerFrame(data) : "binary frame on a JSON connection"),
};

/**
 * The codec of `format`; msgpack's is imported on first use.
 *
 * @throws RangeError for a format the protocol does not have.
 */
export async function loadCodec(format: WireFormat): Promise<WireCodec> {
  if (format === "json") return jsonCodec;
  if (format === "msgpack") return (await import("./msgpackCodec.js")).msgpackCodec;
  throw new RangeError(`unknown wire format ${JSON.stringify(format)}`);
}
