/**
 * What both transports (the WebSocket's `Transport`, `SseTransport`) do between connections,
 * written once so that the two cannot drift apart: the connection state and its one `setState`,
 * the token asked for before every attempt, the reaction to a close code (`closeAction`: stop,
 * ask the token provider once more, or reconnect after a full-jitter backoff delay), the error
 * that closes the transport, and the browser's offline/online events (docs/protocol.md,
 * "Close codes"; "The client: WebSocket, or SSE").
 *
 * A subclass says how one attempt runs (`open`, given the attempt's token), whether one is under
 * way (`attempting`), and how to let go of it at once (`release`); it reports the end of a
 * connection with `closedWith(code)` and its opening with `connectionOpened()`. Nothing here
 * runs per frame: a base class rather than a composed helper keeps the subclasses' frame paths
 * as they were.
 */
import { RetrySchedule, type RetryScheduleOptions } from "./backoff.js";
import type { RetryInfo, StateChange } from "./clientEvents.js";
import { CloseCode, closeAction } from "./closeCodes.js";
import { checkTransition, type ClientState } from "./connectionState.js";
import { AuthenticationError, ConnectionForbiddenError, ProgressClientError } from "./errors.js";
import type { NetworkMonitor } from "./network.js";
import { Timer } from "./timer.js";

/** A token, or a function that returns a fresh one for each connection attempt. */
export type TokenSource =
  | string
  | null
  | (() => string | null | undefined | Promise<string | null | undefined>);

/** A transport's own state change (the client's adds the transport in use). */
export type InnerStateChange = Omit<StateChange, "transport">;

/** What the reconnect policy needs of a transport's options. */
export interface ReconnectOptions extends RetryScheduleOptions {
  /** The token, or the function asked for one before every attempt. */
  token: TokenSource;
  /** Offline/online source; `null` to ignore the network. */
  network: NetworkMonitor | null;
  /** Random source for the jitter, `[0, 1)`. */
  random: () => number;
}

/** What both transports report, synchronously, to their owner about the connection itself. */
export interface ReconnectHandlers {
  /** The connection state changed. */
  onState(change: InnerStateChange): void;
  /** A reconnect attempt was scheduled. */
  onRetry(info: RetryInfo): void;
  /** Something went wrong; when it closed the transport, `lastError` is already set. */
  onError(error: ProgressClientError): void;
}

/** Why `release` lets go of the connection: `close()` for good, or the network went away. */
export type ReleaseReason = "close" | "offline";

/** A connection reopened until `close()` or a close code that says stop. */
export abstract class ReconnectingTransport<O extends ReconnectOptions, H extends ReconnectHandlers> {
  private _state: ClientState = "idle";
  private _lastError: ProgressClientError | null = null;
  /** Bumped whenever an attempt or connection is abandoned, so its late callbacks are ignored. */
  protected generation = 0;
  /** Whether a 4001 already made us ask the token provider again (a second one is final). */
  private authRetried = false;
  protected readonly retries: RetrySchedule;
  private readonly retryTimer = new Timer();

  constructor(
    protected readonly options: O,
    protected readonly handlers: H,
  ) {
    this.retries = new RetrySchedule(options, options.random);
  }

  /** Current connection state. */
  get state(): ClientState {
    return this._state;
  }

  /** The error that closed the transport (4001 twice, 4003, bad protocol), if any. */
  get lastError(): ProgressClientError | null {
    return this._lastError;
  }

  /** Open the connection (no-op unless idle or closed). */
  connect(): void {
    if (this._state !== "idle" && this._state !== "closed") return;
    this.retries.reset();
    this.authRetried = false;
    this._lastError = null;
    this.listenToNetwork(true);
    this.setState("connecting");
    void this.attempt();
  }

  /** Close for good (until the next `connect()`): nothing keeps running, nothing is retried. */
  close(): void {
    this.generation++;
    this.retryTimer.stop();
    this.listenToNetwork(false);
    this.release("close");
    this.setState("closed");
  }

  /** Run one attempt of this transport with `token` (`generation` is the attempt's own). */
  protected abstract open(token: string | null, generation: number): void | Promise<void>;

  /** Whether an attempt or a connection is under way (then `online` has nothing to start). */
  protected abstract get attempting(): boolean;

  /** Stop the current attempt or connection at once, its timers too; the owner hears it is gone. */
  protected abstract release(why: ReleaseReason): void;

  /** The one place the state changes; `STATE_TRANSITIONS` says which moves are allowed. */
  protected setState(next: ClientState): void {
    if (this._state === next) return;
    const prev = this._state;
    checkTransition(prev, next);
    this._state = next;
    this.handlers.onState({ prev, next });
  }

  /** A connection opened: its uptime starts counting, and a later 4001 may ask for a token again. */
  protected connectionOpened(): void {
    this.retries.opened(Date.now());
    this.authRetried = false;
  }

  /** Close with `error` set as `lastError`. */
  protected fail(error: ProgressClientError): void {
    this._lastError = error;
    this.handlers.onError(error);
    this.close();
  }

  /** A new attempt: ask for its token (a provider's promise may outlive it), then `open`. */
  private async attempt(): Promise<void> {
    const generation = ++this.generation;
    const source = this.options.token;
    let token: string | null | undefined;
    try {
      token = typeof source === "function" ? await source() : source;
    } catch (cause) {
      if (generation !== this.generation) return;
      this.handlers.onError(new ProgressClientError("token provider failed", { cause }));
      this.closedWith(CloseCode.ABNORMAL, "token provider failed");
      return;
    }
    if (generation !== this.generation) return;
    return this.open(token ?? null, generation);
  }

  /** The connection (or the attempt to open one) ended with `code`: what the protocol says to do. */
  protected closedWith(code: number, reason: string): void {
    if (this._state === "closed") return;
    switch (closeAction(code)) {
      case "stop":
        if (code === CloseCode.FORBIDDEN) {
          this.fail(new ConnectionForbiddenError(`connection forbidden: ${reason || code}`, { closeCode: code }));
        } else {
          this.close();
        }
        return;
      case "reauthenticate":
        if (typeof this.options.token === "function" && !this.authRetried) {
          // Ask the token provider once more, right away; a second 4001 in a row is final.
          this.authRetried = true;
          const generation = this.generation;
          this.setState(this._state === "connecting" ? "connecting" : "reconnecting");
          if (generation === this.generation) void this.attempt(); // unless closed meanwhile
        } else {
          this.fail(new AuthenticationError(`token refused by the server: ${reason || code}`, { closeCode: code }));
        }
        return;
      case "reconnect":
        this.scheduleReconnect(code);
    }
  }

  private scheduleReconnect(closeCode: number): void {
    const { attempt, delayMs } = this.retries.next(Date.now());
    // A state or retry listener may close the transport: then nothing is scheduled.
    const generation = this.generation;
    this.setState("reconnecting");
    if (generation !== this.generation) return;
    if (this.options.network && !this.options.network.isOnline()) {
      this.handlers.onRetry({ attempt, delayMs: null, closeCode });
      return; // `online` reconnects.
    }
    this.handlers.onRetry({ attempt, delayMs, closeCode });
    if (generation !== this.generation) return;
    this.retryTimer.start(delayMs, () => void this.attempt());
  }

  private readonly onOffline = (): void => {
    if (this._state === "closed" || this._state === "idle") return;
    // Don't wait for a timeout: the connection is dead, and no attempt can succeed now.
    this.generation++;
    this.retryTimer.stop();
    this.release("offline");
    this.retries.interrupted();
    this.setState("reconnecting");
  };

  private readonly onOnline = (): void => {
    if (this._state !== "reconnecting" && this._state !== "connecting") return;
    if (this.attempting) return;
    this.retryTimer.stop();
    void this.attempt();
  };

  private listenToNetwork(on: boolean): void {
    const target = this.options.network?.target;
    if (!target) return;
    if (on) {
      target.addEventListener("offline", this.onOffline);
      target.addEventListener("online", this.onOnline);
    } else {
      target.removeEventListener("offline", this.onOffline);
      target.removeEventListener("online", this.onOnline);
    }
  }
}
