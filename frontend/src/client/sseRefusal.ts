/**
 * Why the bridge refused an SSE stream, and what the SSE transport does about it
 * (docs/protocol.md, "The client: WebSocket, or SSE").
 *
 * A refusal before any message is an HTTP status, which EventSource does not show: the transport
 * asks once more with `fetch` to learn it (`askWhyRefused`; the body is `{"detail", "code"}`).
 * `refusalAction` then maps it to what the WebSocket would have met: 401 is close 4001, 403 for
 * the origin 4003, 429 4009, 5xx 1011; a 400, 403 or 404 of a stream of one subscribe is the
 * `error` frame the WebSocket would have sent for that subscribe. Apart from `fetch` itself, pure.
 */
import { CloseCode } from "./closeCodes.js";
import { ErrorCode } from "./frames.js";

/** What the transport reads of a `fetch` answer. */
export interface FetchAnswer {
  /** HTTP status. */
  readonly status: number;
  /** The body as text (read only for a refusal, never for a stream). */
  text(): Promise<string>;
}

/** The part of `fetch` used to learn why the bridge refused a stream. */
export type FetchLike = (
  url: string,
  init: { signal: AbortSignal; headers: Record<string, string> },
) => Promise<FetchAnswer>;

/** The bridge's answer to a refused stream: its HTTP status (0 for none) and its JSON body. */
export interface Refusal {
  status: number;
  body: { code?: unknown; detail?: unknown };
}

/** No answer at all (no `fetch` to ask with, or the network or the bridge is down). */
export const NO_ANSWER: Refusal = Object.freeze({ status: 0, body: Object.freeze({}) });

/** What to do about a refusal: end the connection as with close `code`, or answer the one subscribe. */
export type RefusalAction =
  | {
      readonly kind: "close";
      readonly code: number;
      readonly reason: string;
      /** Set when the refusal shows a bug on one side (reported before the close). */
      readonly violation: string | null;
    }
  | { readonly kind: "error"; readonly code: ErrorCode; readonly message: string };

/** Ask for the refused stream once more, and read its status and body. */
export async function askWhyRefused(fetch: FetchLike, url: string): Promise<Refusal> {
  const abort = new AbortController();
  try {
    const answer = await fetch(url, { signal: abort.signal, headers: { Accept: "text/event-stream" } });
    const status = answer.status;
    return { status, body: status !== 200 ? parseBody(await answer.text()) : {} };
  } catch {
    return NO_ANSWER; // Not even an answer: the network or the bridge is down.
  } finally {
    abort.abort(); // A 200 is a stream: don't keep it.
  }
}

/** What a refusal means; `oneSubscribe` when the stream carried a single job or room. */
export function refusalAction({ status, body }: Refusal, oneSubscribe: boolean): RefusalAction {
  const code = typeof body.code === "string" ? body.code : "";
  const detail = typeof body.detail === "string" ? body.detail : status ? `HTTP ${status}` : "no answer";
  const close = (closeCode: number, violation: string | null = null): RefusalAction => ({
    kind: "close",
    code: closeCode,
    reason: detail,
    violation,
  });
  if (status === 401) return close(CloseCode.UNAUTHENTICATED);
  if (status === 403 && code === "forbidden_origin") return close(CloseCode.FORBIDDEN);
  if (status === 429) return close(CloseCode.TOO_MANY_CONNECTIONS);
  const fallback = status >= 500 || status === 400 ? CloseCode.INTERNAL : CloseCode.ABNORMAL;
  if (status === 400 || status === 403 || status === 404) {
    // The bridge's answer to this stream's one subscribe, as the WebSocket's error frame.
    if (oneSubscribe) return { kind: "error", code: errorCodeOf(status, code), message: detail };
    // Not a refusal of one subscribe (those come as error frames): a bug on one side.
    return close(fallback, `SSE stream refused with HTTP ${status}: ${detail}`);
  }
  return close(fallback);
}

function parseBody(text: string): { code?: unknown; detail?: unknown } {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" ? (value as { code?: unknown; detail?: unknown }) : {};
  } catch {
    return {};
  }
}

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** The error code of a refused one-subscribe stream: the bridge's own, else the status's. */
function errorCodeOf(status: number, code: string): ErrorCode {
  if (ERROR_CODES.has(code)) return code as ErrorCode;
  if (status === 404) return ErrorCode.NOT_FOUND;
  if (status === 403) return ErrorCode.FORBIDDEN;
  return ErrorCode.BAD_FRAME;
}
