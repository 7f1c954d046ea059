/**
 * The progress-bridge WebSocket client: one connection, many job and room subscriptions,
 * automatic reconnect and gap-free, duplicate-free resume (docs/protocol.md).
 *
 * Framework-free: React hooks live in `src/react/` and only read from this class.
 */
export type {
  JobChange,
  ProgressClientEvents,
  RetryInfo,
  RoomChange,
  SnapshotInfo,
  StateChange,
} from "./clientEvents";
import { backoffDelay } from "./backoff";
import type { ProgressClientEvents } from "./clientEvents";
import { Emitter, type Listener } from "./emitter";
import { JobStore, type ClientStats, type SubscribeOptions } from "./jobStore";
import { CloseCode, closeAction } from "./closeCodes";
import { checkTransition, type ClientState } from "./connectionState";
import {
  AuthenticationError,
  ConnectionForbiddenError,
  ProgressClientError,
  ProtocolViolationError,
} from "./errors";
import {
  JSON_SUBPROTOCOL,
  PROTOCOL_VERSION,
  TOKEN_SUBPROTOCOL_PREFIX,
  type ClientFrame,
  type HelloFrame,
  type ServerFrame,
} from "./frames";
import type { JobState } from "./jobState";
import { encodeClientFrame, parseServerFrame } from "./wire";

export type { ClientState } from "./connectionState";

/** Defaults of the tunable options; times in ms. */
export const DEFAULT_OPTIONS = {
  /** Base of the exponential backoff: ceiling of the first retry's delay, in ms. */
  minReconnectDelay: 500,
  /** Cap of the backoff delay, in ms. */
  maxReconnectDelay: 20_000,
  /** The connection must stay open this long (ms) before the retry counter resets. */
  minUptime: 5_000,
  /** Time allowed from opening the socket to the server's `hello`, in ms. */
  connectTimeout: 10_000,
  /**
   * No frame for `heartbeatFactor × hello.heartbeat_s` counts as a dead connection
   * (the server pings every `heartbeat_s`). Unitless multiplier.
   */
  heartbeatFactor: 2.5,
  /** At most one `ack` per job per this many ms. */
  ackInterval: 1_000,
} as const;

/** The numeric options, by name. */
type Tunables = { -readonly [K in keyof typeof DEFAULT_OPTIONS]: number };

/** A minimal WebSocket, as the browser (and the `ws` package) provide it. */
export interface WebSocketLike {
  /** The subprotocol the server picked. */
  readonly protocol: string;
  /** Send one text frame. */
  send(data: string): void;
  /** Start the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Called when the handshake completed. */
  onopen: ((ev: unknown) => void) | null;
  /** Called for every frame. */
  onmessage: ((ev: { data: unknown }) => void) | null;
  /** Called once when the connection is gone. */
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  /** Called on a transport error (always followed by `onclose`). */
  onerror: ((ev: unknown) => void) | null;
}

/** A WebSocket constructor (`globalThis.WebSocket` or `ws`'s `WebSocket`). */
export type WebSocketConstructor = new (url: string, protocols?: string[]) => WebSocketLike;

/** A token, or a function that returns a fresh one for each connection attempt. */
export type TokenSource =
  | string
  | null
  | (() => string | null | undefined | Promise<string | null | undefined>);

/** Where the client learns that the network went away or came back. */
export interface NetworkMonitor {
  /** Dispatches `offline` and `online` events (the browser's `window`). */
  target: EventTarget;
  /** Whether the network is up now (`navigator.onLine`). */
  isOnline: () => boolean;
}

/** Options of `new ProgressClient(...)`. */
export interface ProgressClientOptions extends Partial<Tunables> {
  /** WebSocket URL of the bridge, e.g. `wss://example.com/ws`. */
  url: string | URL;
  /** The JWT, or a (possibly async) function called before every connection attempt. */
  token?: TokenSource;
  /** WebSocket implementation; `globalThis.WebSocket` by default. */
  WebSocket?: WebSocketConstructor;
  /**
   * Heartbeat timeout in ms; overrides `heartbeatFactor × hello.heartbeat_s`.
   */
  heartbeatTimeout?: number;
  /** Offline/online source; the browser's `window`/`navigator` by default, `null` to disable. */
  network?: NetworkMonitor | null;
  /** Random source for the jitter, `[0, 1)`; `Math.random` by default. */
  random?: () => number;
}

function defaultNetwork(): NetworkMonitor | null {
  const g = globalThis as { window?: EventTarget; navigator?: { onLine?: boolean } };
  if (!g.window || typeof g.window.addEventListener !== "function") return null;
  return { target: g.window, isOnline: () => g.navigator?.onLine !== false };
}

/**
 * A connection to the bridge that keeps every subscription alive across reconnects.
 *
 * Call `connect()` (or just `subscribe()`, which connects when idle); `close()` stops for good
 * until the next `connect()`. Each job's state is kept (see `getJob`) and updated from events
 * applied exactly once in stream order; after a drop the client resumes every subscription from
 * its last `(epoch, id)` and the server replays what was missed. Not guaranteed: events of a job
 * that is not subscribed (directly or through a room) are not kept.
 */
export class ProgressClient {
  private _state: ClientState = "idle";
  private readonly opts: Tunables;
  private readonly url: string;
  private readonly tokenSource: TokenSource;
  private readonly WS: WebSocketConstructor;
  private readonly network: NetworkMonitor | null;
  private readonly random: () => number;
  private readonly heartbeatOverride: number | undefined;

  private socket: WebSocketLike | null = null;
  /** Bumped whenever a connection attempt is abandoned, so late callbacks are ignored. */
  private generation = 0;
  private attempts = 0;
  private openedAt: number | null = null;
  private authRetried = false;
  private hello: HelloFrame | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setTimeout> | null = null;
  private ackTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatMs = 0;
  private _lastError: ProgressClientError | null = null;

  private readonly emitter = new Emitter<ProgressClientEvents>();
  private readonly store = new JobStore((type, payload) => this.emitter.emit(type, payload));

  /** Counters; read-only for callers. */
  readonly stats: ClientStats = this.store.stats;

  constructor(options: ProgressClientOptions) {
    const opts: Tunables = { ...DEFAULT_OPTIONS };
    for (const key of Object.keys(DEFAULT_OPTIONS) as (keyof Tunables)[]) {
      const value = options[key];
      if (value === undefined) continue;
      if (!Number.isFinite(value) || value < 0) {
        throw new RangeError(`option ${key} must be a finite number >= 0, got ${value}`);
      }
      opts[key] = value;
    }
    this.opts = opts;
    this.url = String(options.url);
    this.tokenSource = options.token ?? null;
    const WS =
      options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ??
      null;
    if (!WS) throw new ProgressClientError("no WebSocket implementation: pass options.WebSocket");
    this.WS = WS;
    this.network = options.network === undefined ? defaultNetwork() : options.network;
    this.random = options.random ?? Math.random;
    this.heartbeatOverride = options.heartbeatTimeout;
  }

  /** Current connection state. */
  get state(): ClientState {
    return this._state;
  }

  /** The error that closed the client (4001, 4003, bad protocol), if any. */
  get lastError(): ProgressClientError | null {
    return this._lastError;
  }

  /** The server's `hello` of the current connection (user name, heartbeat, limits). */
  get serverHello(): Readonly<HelloFrame> | null {
    return this.hello;
  }

  /** Listen to one kind of event; returns the function that stops listening. */
  on<K extends keyof ProgressClientEvents>(
    type: K,
    listener: Listener<ProgressClientEvents[K]>,
  ): () => void {
    return this.emitter.on(type, listener);
  }

  /** The job's current state, or `undefined` before its snapshot or first event arrived. */
  getJob(jobId: string): JobState | undefined {
    return this.store.getJob(jobId);
  }

  /** Why the job's subscription was refused (`forbidden`, `not_found`, …), if it was. */
  getJobError(jobId: string): ProgressClientError | null {
    return this.store.getJobError(jobId);
  }

  /** Why the room's subscription was refused, if it was. */
  getRoomError(room: string): ProgressClientError | null {
    return this.store.getRoomError(room);
  }

  /** The room's jobs, newest first; the same array until one of them changes. */
  getRoomJobs(room: string): readonly JobState[] {
    return this.store.getRoomJobs(room);
  }

  /** Open the connection (no-op unless idle or closed). */
  connect(): void {
    if (this._state !== "idle" && this._state !== "closed") return;
    this.attempts = 0;
    this.authRetried = false;
    this._lastError = null;
    this.addNetworkListeners();
    this.setState("connecting");
    void this.openSocket();
  }

  /** Close for good (until the next `connect()`); subscriptions are kept for that. */
  close(): void {
    this.store.flushAcks();
    this.flush();
    this.toClosed();
  }

  /**
   * Watch one job; connects when idle. The first subscription gets the job's snapshot, then
   * live events; after a reconnect it resumes from the last event applied. Returns the
   * function that stops watching (subscriptions are counted: the last one unsubscribes).
   */
  subscribe(jobId: string, options: SubscribeOptions = {}): () => void {
    this.store.subscribe(jobId, options);
    this.flush();
    if (this._state === "idle") this.connect();
    return once(() => {
      this.store.unsubscribe(jobId);
      this.flush();
    });
  }

  /**
   * Watch every job of a room (`user:<name>` or `document:<id>`); connects when idle.
   * Returns the function that stops watching.
   */
  subscribeRoom(room: string): () => void {
    this.store.subscribeRoom(room);
    this.flush();
    if (this._state === "idle") this.connect();
    return once(() => {
      this.store.unsubscribeRoom(room);
      this.flush();
    });
  }

  // ── state machine ────────────────────────────────────────────────────────────────────────

  /** The one place the state changes; `STATE_TRANSITIONS` says which moves are allowed. */
  private setState(next: ClientState): void {
    if (this._state === next) return;
    const prev = this._state;
    checkTransition(prev, next);
    this._state = next;
    this.emit("state", { prev, next });
  }

  private async openSocket(): Promise<void> {
    const generation = ++this.generation;
    let token: string | null | undefined;
    try {
      token = typeof this.tokenSource === "function" ? await this.tokenSource() : this.tokenSource;
    } catch (cause) {
      if (generation !== this.generation) return;
      this.emit("error", new ProgressClientError("token provider failed", { cause }));
      this.handleClose(CloseCode.Abnormal, "token provider failed");
      return;
    }
    if (generation !== this.generation) return;
    const protocols = [JSON_SUBPROTOCOL];
    if (token) protocols.push(TOKEN_SUBPROTOCOL_PREFIX + token);
    let socket: WebSocketLike;
    try {
      socket = new this.WS(this.url, protocols);
    } catch (cause) {
      this.fail(new ProgressClientError(`cannot open ${this.url}`, { cause }));
      return;
    }
    this.socket = socket;
    this.hello = null;
    this.openedAt = null;
    socket.onmessage = (ev) => {
      if (this.socket === socket) this.receive(ev.data);
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.handleClose(ev.code, ev.reason);
    };
    socket.onerror = () => {
      // Always followed by onclose, which decides what to do.
    };
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      this.abandonSocket(CloseCode.HeartbeatTimeout, "no hello from the server");
    }, this.opts.connectTimeout);
  }

  /** Stop using the current socket at once (its own close handshake may hang) and move on. */
  private abandonSocket(code: number, reason: string): void {
    if (!this.socket) return;
    this.dropSocket(code, reason);
    this.handleClose(code, reason);
  }

  private dropSocket(code: number, reason: string): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.store.connectionLost();
    socket.onmessage = null;
    socket.onclose = null;
    socket.onopen = null;
    try {
      socket.close(code, reason);
    } catch {
      // Already closed or not yet open: nothing to do.
    }
  }

  private handleClose(code: number, reason: string): void {
    this.clearConnectionTimers();
    this.store.connectionLost();
    if (this._state === "closed") return;
    switch (closeAction(code)) {
      case "stop":
        if (code === CloseCode.Forbidden) {
          this.fail(new ConnectionForbiddenError(`connection forbidden: ${reason || code}`, { closeCode: code }));
        } else {
          this.toClosed();
        }
        return;
      case "reauthenticate":
        if (typeof this.tokenSource === "function" && !this.authRetried) {
          // Ask the token provider once more, right away; a second 4001 in a row is final.
          this.authRetried = true;
          this.setState(this._state === "connecting" ? "connecting" : "reconnecting");
          void this.openSocket();
        } else {
          this.fail(
            new AuthenticationError(`token refused by the server: ${reason || code}`, {
              closeCode: code,
            }),
          );
        }
        return;
      case "reconnect":
        this.scheduleReconnect(code);
    }
  }

  private scheduleReconnect(closeCode: number): void {
    if (this.openedAt !== null && Date.now() - this.openedAt >= this.opts.minUptime) {
      this.attempts = 0;
    }
    this.openedAt = null;
    const attempt = this.attempts++;
    this.setState("reconnecting");
    if (this.network && !this.network.isOnline()) {
      this.emit("retry", { attempt: attempt + 1, delayMs: null, closeCode });
      return; // `online` reconnects.
    }
    const delayMs = backoffDelay(attempt, this.opts, this.random);
    this.emit("retry", { attempt: attempt + 1, delayMs, closeCode });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.openSocket();
    }, delayMs);
  }

  private fail(error: ProgressClientError): void {
    this._lastError = error;
    this.emit("error", error);
    this.toClosed();
  }

  /** The one way into "closed": nothing keeps running, nothing is retried. */
  private toClosed(): void {
    this.generation++;
    this.clearTimers();
    this.removeNetworkListeners();
    this.dropSocket(CloseCode.Normal, "client closed");
    this.store.connectionLost();
    this.hello = null;
    this.setState("closed");
  }

  private readonly onOffline = (): void => {
    if (this._state === "closed" || this._state === "idle") return;
    this.generation++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.dropSocket(CloseCode.GoingAway, "offline");
    this.clearConnectionTimers();
    this.openedAt = null;
    this.setState("reconnecting");
  };

  private readonly onOnline = (): void => {
    if (this._state !== "reconnecting" && this._state !== "connecting") return;
    if (this.socket) return; // An attempt is already under way.
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.openSocket();
  };

  private addNetworkListeners(): void {
    this.network?.target.addEventListener("offline", this.onOffline);
    this.network?.target.addEventListener("online", this.onOnline);
  }

  private removeNetworkListeners(): void {
    this.network?.target.removeEventListener("offline", this.onOffline);
    this.network?.target.removeEventListener("online", this.onOnline);
  }

  private clearConnectionTimers(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.connectTimer = null;
    this.heartbeatTimer = null;
  }

  private clearTimers(): void {
    this.clearConnectionTimers();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.retryTimer = null;
    this.ackTimer = null;
  }

  private armHeartbeat(): void {
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
    if (!this.hello || this.heartbeatMs <= 0) return;
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatTimer = null;
      this.abandonSocket(CloseCode.HeartbeatTimeout, "heartbeat timeout");
    }, this.heartbeatMs);
  }

  // ── frames in ────────────────────────────────────────────────────────────────────────────

  private receive(data: unknown): void {
    this.armHeartbeat(); // Any frame is a sign of life.
    if (typeof data !== "string") {
      this.emit("error", new ProtocolViolationError("binary frame on a JSON connection"));
      return;
    }
    const frame = parseServerFrame(data);
    if (typeof frame === "string") {
      this.emit("error", new ProtocolViolationError(frame));
      return;
    }
    this.dispatch(frame);
  }

  private dispatch(frame: ServerFrame): void {
    if (frame.op === "ping") {
      this.send({ op: "pong" });
      return;
    }
    if (frame.op === "hello" && !this.onHello(frame)) return;
    this.store.receive(frame);
    this.flush();
    if (frame.op === "hello") this.setState("open");
    if (this.store.hasPendingAcks) this.scheduleAck();
  }

  /** Check and take the server's hello; false when the client closed on it. */
  private onHello(hello: HelloFrame): boolean {
    if (hello.protocol !== PROTOCOL_VERSION) {
      this.fail(
        new ProtocolViolationError(
          `server speaks protocol ${hello.protocol}, this client ${PROTOCOL_VERSION}`,
        ),
      );
      return false;
    }
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.hello = hello;
    this.heartbeatMs =
      this.heartbeatOverride ?? Math.round(hello.heartbeat_s * 1000 * this.opts.heartbeatFactor);
    this.openedAt = Date.now();
    this.authRetried = false;
    this.armHeartbeat();
    return true;
  }

  // ── frames out ───────────────────────────────────────────────────────────────────────────

  private send(frame: ClientFrame): void {
    if (!this.socket || !this.hello) return;
    try {
      this.socket.send(encodeClientFrame(frame));
    } catch {
      // The socket is closing; onclose takes it from here.
    }
  }

  /** Write what the store has queued. */
  private flush(): void {
    for (const frame of this.store.framesToSend()) this.send(frame);
  }

  private scheduleAck(): void {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this.flushAcks();
    }, this.opts.ackInterval);
  }

  private flushAcks(): void {
    this.store.flushAcks(); // Kept while disconnected; the next hello schedules them.
    this.flush();
  }

  private emit<K extends keyof ProgressClientEvents>(type: K, payload: ProgressClientEvents[K]): void {
    this.emitter.emit(type, payload);
  }
}

/** `fn`, callable once; later calls do nothing. */
function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
