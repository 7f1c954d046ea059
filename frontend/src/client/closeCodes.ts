/** WebSocket close codes the bridge uses (docs/protocol.md, "Close codes"). */
export const CloseCode = {
  /** Normal close: stop. */
  Normal: 1000,
  /** The peer is going away (browser navigation, proxy restart): reconnect. */
  GoingAway: 1001,
  /** No close frame was received (network drop, killed server): reconnect. */
  Abnormal: 1006,
  /** Our frame was larger than `max_frame_bytes`: a client bug; reconnect. */
  MessageTooBig: 1009,
  /** Internal server error: reconnect with backoff. */
  InternalError: 1011,
  /** Server restarting (graceful shutdown): reconnect (any bridge) and resume. */
  ServiceRestart: 1012,
  /** Heartbeat timeout: no frame for too long (sent by either side): reconnect and resume. */
  HeartbeatTimeout: 4000,
  /** Unauthenticated: get a new token, don't retry blindly. */
  Unauthenticated: 4001,
  /** Forbidden: the token may not open a connection; stop. */
  Forbidden: 4003,
  /** Slow consumer: the outbox overflowed; reconnect and resume by replay. */
  SlowConsumer: 4008,
  /** Too many connections: reconnect later, with backoff. */
  TooManyConnections: 4009,
  /** Inbound rate limit exceeded repeatedly: reconnect later, with backoff. */
  RateLimited: 4029,
} as const;

/** One of the documented close codes. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** What the client does after a close: stop, ask for a new token, or reconnect with backoff. */
export type CloseAction = "stop" | "reauthenticate" | "reconnect";

/**
 * The documented reaction to a close code. Unknown codes (and 1006, a dropped network)
 * reconnect with backoff: giving up on an unexpected code would leave a progress bar frozen.
 */
export function closeAction(code: number): CloseAction {
  switch (code) {
    case CloseCode.Normal:
    case CloseCode.Forbidden:
      return "stop";
    case CloseCode.Unauthenticated:
      return "reauthenticate";
    default:
      return "reconnect";
  }
}
