/**
 * The JSON wire format (docs/protocol.md): the one place text becomes a typed frame and back.
 *
 * Validation is deliberately shallow: the envelope (an object with a known `op`) and the fields
 * the client acts on, each with its JSON kind. Event payloads are trusted to follow the schema the
 * server validated them against. When the frame types are generated from the Python models,
 * `REQUIRED_FIELDS` is the one table to check against them.
 */
import type { ClientFrame, ServerFrame } from "./frames";

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
 * Parse one text frame.
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
  if (kindOf(data) !== "object") return "frame is not a JSON object";
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

/** The text frame for one client frame. */
export function encodeClientFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}
