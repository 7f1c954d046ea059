/**
 * The client's connection states and the one table of transitions allowed between them.
 * Each transport's `setState` (`ReconnectingTransport`) and the client's (`Connection`) check
 * every transition against it; a move the table does not allow is a bug in the client and throws
 * `IllegalTransitionError` instead of leaving the state in limbo.
 */
import { IllegalTransitionError } from "./errors.js";

/** Connection state of the client; every transition goes through one `setState`. */
export type ClientState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/**
 * What the connection runs on: a WebSocket, or Server-Sent Events (`GET /sse`, one way) while
 * WebSocket handshakes fail (docs/protocol.md, "The client: WebSocket, or SSE").
 */
export type TransportKind = "websocket" | "sse";

/**
 * From each state, the states it may move to. A move to the current state is no transition at
 * all: it is always allowed and emits nothing (a 4001 retry while connecting stays connecting).
 */
export const STATE_TRANSITIONS: { readonly [S in ClientState]: readonly ClientState[] } = {
  // connect() (or a first subscribe); close() before ever connecting.
  idle: ["connecting", "closed"],
  // hello; a failed attempt (drop, connect timeout, token provider, offline); close(), 1000, 4003, 4001 for good.
  connecting: ["open", "reconnecting", "closed"],
  // a drop, heartbeat timeout, offline or a 4001 retry; close(), 1000, 4003, 4001 for good.
  open: ["reconnecting", "closed"],
  // hello on a later attempt; close(), 1000, 4003, 4001 for good.
  reconnecting: ["open", "closed"],
  // connect() again.
  closed: ["connecting"],
};

/** Whether `prev → next` is allowed (moving to the current state always is). */
export function canTransition(prev: ClientState, next: ClientState): boolean {
  return prev === next || STATE_TRANSITIONS[prev].includes(next);
}

/**
 * Throw unless `prev → next` is allowed.
 *
 * @throws IllegalTransitionError naming both states.
 */
export function checkTransition(prev: ClientState, next: ClientState): void {
  if (!canTransition(prev, next)) throw new IllegalTransitionError(prev, next);
}

/**
 * The client's state when the transport in use (WebSocket or SSE, each with the same states of
 * its own) moves to `inner`: the transport's state, except that a transport starting afresh
 * (`connecting`) after the client was connected, or already trying again, is `reconnecting` for
 * the client (it is switching transports, not connecting for the first time).
 */
export function followState(current: ClientState, inner: ClientState): ClientState {
  if (inner === "idle") return current;
  if (inner === "connecting" && (current === "open" || current === "reconnecting")) return "reconnecting";
  return inner;
}
