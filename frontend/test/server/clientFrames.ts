/**
 * What the test server accepts: a client frame of the generated `ClientFrame` union, or the
 * error code the bridge answers instead (`bad_frame`, `unknown_op`).
 */
import { ErrorCode } from "../../src/generated/constants";
import type { ClientFrame } from "../../src/generated/events";

/** A frame refused with an `error` frame. */
export interface Refusal {
  code: ErrorCode;
  message: string;
}

/**
 * Per client op, the string fields it must carry. Keyed by the generated union: an op added to
 * (or removed from) the Python models does not compile here until it is handled.
 */
const REQUIRED: { readonly [Op in ClientFrame["op"]]: readonly string[] } = {
  subscribe: [],
  unsubscribe: [],
  ack: ["job_id", "id"],
  pong: [],
};

/** Check one decoded frame's shape (shallowly, as far as the test server acts on it). */
export function parseClientFrame(data: unknown): ClientFrame | Refusal {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { code: ErrorCode.BAD_FRAME, message: "a frame is an object" };
  }
  const frame = data as Record<string, unknown>;
  const op = frame.op;
  if (typeof op !== "string" || !Object.hasOwn(REQUIRED, op)) {
    return { code: ErrorCode.UNKNOWN_OP, message: `unknown op ${JSON.stringify(op)}` };
  }
  for (const field of REQUIRED[op as ClientFrame["op"]]) {
    if (typeof frame[field] !== "string") return { code: ErrorCode.BAD_FRAME, message: `${field} must be a string` };
  }
  if (op === "subscribe" || op === "unsubscribe") {
    const targets = (["job_id", "room"] as const).filter((k) => frame[k] != null);
    if (targets.length !== 1 || typeof frame[targets[0]!] !== "string") {
      return { code: ErrorCode.BAD_FRAME, message: "name a job_id or a room" };
    }
  }
  return frame as unknown as ClientFrame;
}

/** True when `parseClientFrame` refused the frame. */
export function isRefusal(value: ClientFrame | Refusal): value is Refusal {
  return "code" in value && !("op" in value);
}
