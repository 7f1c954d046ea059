/**
 * One error hierarchy for the client (STYLE.md §9):
 *
 * ProgressClientError
 * ├── AuthenticationError   the server closed with 4001 and a fresh token did not help
 * ├── ConnectionForbiddenError   the server closed with 4003
 * ├── ServerError           an `error` frame (code, message, ref); the connection stays open
 * ├── ProtocolViolationError   a frame the client cannot make sense of
 * └── IllegalTransitionError   a state change the transition table forbids (a client bug)
 */
import type { ClientState } from "./connectionState.js";
import type { ErrorCode } from "./frames.js";

/** Base class of every error the client emits or throws. */
export class ProgressClientError extends Error {
  /** Close code of the connection that ended with this error, when there was one. */
  readonly closeCode: number | undefined;

  constructor(message: string, options: { closeCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.closeCode = options.closeCode;
  }
}

/** The token was refused (close 4001) even after asking the token provider for a new one. */
export class AuthenticationError extends ProgressClientError {}

/** The token is valid but may not open a connection (close 4003); the client stops. */
export class ConnectionForbiddenError extends ProgressClientError {}

/** A typed `error` frame from the server (`bad_frame`, `forbidden`, `not_found`, …). */
export class ServerError extends ProgressClientError {
  /** The server's error code, e.g. `"forbidden"` (match on `ErrorCode`). */
  readonly code: ErrorCode;
  /** The `ref` of the client frame this error answers, if any. */
  readonly ref: string | undefined;
  /** The job the failed request was about, when the client can tell. */
  readonly jobId: string | undefined;
  /** The room the failed request was about, when the client can tell. */
  readonly room: string | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    context: { ref?: string; jobId?: string; room?: string } = {},
  ) {
    super(`${code}: ${message}`);
    this.code = code;
    this.ref = context.ref;
    this.jobId = context.jobId;
    this.room = context.room;
  }
}

/** The server sent something the protocol does not allow (bad JSON, unknown op, …). */
export class ProtocolViolationError extends ProgressClientError {}

/** A connection state change that `STATE_TRANSITIONS` does not allow: a bug in the client. */
export class IllegalTransitionError extends ProgressClientError {
  /** State the client was in. */
  readonly from: ClientState;
  /** State it was asked to move to. */
  readonly to: ClientState;

  constructor(from: ClientState, to: ClientState) {
    super(`illegal state transition: ${from} -> ${to}`);
    this.from = from;
    this.to = to;
  }
}
