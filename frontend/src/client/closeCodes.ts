/**
 * WebSocket close codes (docs/protocol.md, "Close codes") and what the client does after each.
 *
 * The codes the bridge sends come from the generated `CloseCode` (`progress_bridge/bridge/core/
 * codes.py`, via `scripts/gen_types`): a code added, renamed or renumbered in Python changes this
 * object, and `SERVER_CLOSE_ACTIONS` stops compiling until the new code has a decided reaction.
 */
import { CloseCode as ServerCloseCode } from "../generated/constants.js";

/** Every code the bridge sends (its Python names), plus the two the browser reports itself. */
export const CloseCode = {
  ...ServerCloseCode,
  /** The peer is going away (browser navigation, proxy restart): reconnect. */
  GOING_AWAY: 1001,
  /** No close frame was received (network drop, killed server): reconnect. */
  ABNORMAL: 1006,
} as const;

/** One of the known close codes. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** What the client does after a close: stop, ask for a new token, or reconnect with backoff. */
export type CloseAction = "stop" | "reauthenticate" | "reconnect";

/** The documented reaction to each code the bridge sends; exhaustive over the generated codes. */
export const SERVER_CLOSE_ACTIONS: { readonly [C in ServerCloseCode]: CloseAction } = {
  /** Normal close. */
  [ServerCloseCode.NORMAL]: "stop",
  /** Our frame was larger than `max_frame_bytes`: a client bug; reconnect. */
  [ServerCloseCode.TOO_BIG]: "reconnect",
  /** Internal server error, or no answer to protocol pings. */
  [ServerCloseCode.INTERNAL]: "reconnect",
  /** Server restarting: any bridge will do, and the client resumes. */
  [ServerCloseCode.RESTART]: "reconnect",
  /** No frame from the client for too long. */
  [ServerCloseCode.HEARTBEAT_TIMEOUT]: "reconnect",
  /** Token missing, bad or expired: get a new one, don't retry blindly. */
  [ServerCloseCode.UNAUTHENTICATED]: "reauthenticate",
  /** The token may not open a connection. */
  [ServerCloseCode.FORBIDDEN]: "stop",
  /** The outbox overflowed or stalled: resume by replay. */
  [ServerCloseCode.SLOW_CONSUMER]: "reconnect",
  /** Too many connections: later, with backoff. */
  [ServerCloseCode.TOO_MANY_CONNECTIONS]: "reconnect",
  /** Inbound rate limit exceeded repeatedly: later, with backoff. */
  [ServerCloseCode.RATE_LIMITED]: "reconnect",
};

/**
 * The documented reaction to a close code. Unknown codes (and 1006, a dropped network)
 * reconnect with backoff: giving up on an unexpected code would leave a progress bar frozen.
 */
export function closeAction(code: number): CloseAction {
  return Object.hasOwn(SERVER_CLOSE_ACTIONS, code)
    ? SERVER_CLOSE_ACTIONS[code as ServerCloseCode]
    : "reconnect";
}
