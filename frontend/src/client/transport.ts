/**
 * The connection to the bridge: one WebSocket at a time, and everything it takes to keep one
 * open (docs/protocol.md, "Connecting", "Limits and heartbeat", "Close codes").
 *
 * It offers the wire format's subprotocol (`options.format`: JSON text frames or msgpack binary
 * frames) and the token's, waits `connectTimeout` for `hello` and checks its
 * protocol version, answers `ping` with `pong`, counts any frame as a sign of life (silence for
 * `heartbeatFactor × heartbeat_s` drops the socket and reconnects), follows the browser's
 * offline/online events, and reacts to close codes as `closeAction` says: stop, ask the token
 * provider once more, or reconnect after a full-jitter backoff delay (`RetrySchedule`).
 *
 * It owns its connection state; every change goes through `setState`, checked against
 * `STATE_TRANSITIONS`. It knows nothing about jobs: every frame but `ping` goes to `onFrame`.
 * It reports each attempt that fails at the handshake (`onHandshakeFailure`), so that its owner
 * (`Connection`) can tell a network that refuses WebSockets and fall back to SSE. Its owner may
 * call `close()` from inside any handler: nothing of the abandoned attempt runs on after it.
 */
import { RetrySchedule, type RetryScheduleOptions } from "./backoff.js";
import type { RetryInfo, StateChange } from "./clientEvents.js";
import { CloseCode, closeAction } from "./closeCodes.js";
import { checkTransition, type ClientState } from "./connectionState.js";
import {
  AuthenticationError,
  ConnectionForbiddenError,
  ProgressClientError,
  ProtocolViolationError,
} from "./errors.js";
import {
  PROTOCOL_VERSION,
  TOKEN_SUBPROTOCOL_PREFIX,
  type ClientFrame,
  type HelloFrame,
  type ServerFrame,
} from "./frames.js";
import type { NetworkMonitor } from "./network.js";
import { Timer } from "./timer.js";
import { loadCodec, type WireCodec, type WireFormat } from "./wire.js";

/** A minimal WebSocket, as the browser (and the `ws` package) provide it. */
export interface WebSocketLike {
  /** The subprotocol the server picked. */
  readonly protocol: string;
  /** How binary frames are delivered; set to `"arraybuffer"` for msgpack connections. */
  binaryType?: string;
  /** Send one frame: text (JSON) or binary (msgpack). */
  send(data: string | Uint8Array): void;
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

/** What the transport needs, defaults applied (`resolveOptions` builds it). */
export interface TransportOptions extends RetryScheduleOptions {
  /** WebSocket URL of the bridge. */
  url: string;
  /** Wire format to ask the bridge for. */
  format: WireFormat;
  /** The token, or the function asked for one before every attempt. */
  token: TokenSource;
  /** WebSocket implementation. */
  WebSocket: WebSocketConstructor;
  /** Offline/online source; `null` to ignore the network. */
  network: NetworkMonitor | null;
  /** Random source for the jitter, `[0, 1)`. */
  random: () => number;
  /** Time allowed from opening the socket to `hello`, in ms. */
  connectTimeout: number;
  /** Silence for this many `hello.heartbeat_s` means a dead connection. */
  heartbeatFactor: number;
  /** Heartbeat timeout in ms, overriding `heartbeatFactor`; `undefined` to use the factor. */
  heartbeatTimeout: number | undefined;
}

/** A transport's own state change (the client's adds the transport in use). */
export type InnerStateChange = Omit<StateChange, "transport">;

/** What the transport reports, synchronously, to its owner. */
export interface TransportHandlers {
  /** A server frame other than `ping`; `hello` once it passed the checks, before `open`. */
  onFrame(frame: ServerFrame): void;
  /** The current socket is gone: nothing more can be sent on it, no reply will come. */
  onDisconnect(): void;
  /** The connection state changed. */
  onState(change: InnerStateChange): void;
  /** A reconnect attempt was scheduled. */
  onRetry(info: RetryInfo): void;
  /** Something went wrong; when it closed the transport, `lastError` is already set. */
  onError(error: ProgressClientError): void;
  /**
   * An attempt failed at the handshake: its socket closed before it opened, or closed abnormally
   * (1006) or brought no `hello` within `connectTimeout` after it opened. Called before the
   * transport decides what to do next (the owner may `close()` it instead).
   */
  onHandshakeFailure(): void;
}

/** One connection to the bridge, reopened until `close()` or a close code that says stop. */
export class Transport {
  private _state: ClientState = "idle";
  private _lastError: ProgressClientError | null = null;
  private _hello: HelloFrame | null = null;
  private socket: WebSocketLike | null = null;
  private codec: WireCodec | null = null;
  /** Bumped whenever a connection attempt is abandoned, so its late callbacks are ignored. */
  private generation = 0;
  /** Whether a 4001 already made us ask the token provider again (a second one is final). */
  private authRetried = false;
  private heartbeatMs = 0;
  private readonly retries: RetrySchedule;
  private readonly connectTimer = new Timer();
  private readonly heartbeatTimer = new Timer();
  private readonly retryTimer = new Timer();

  constructor(
    private readonly options: TransportOptions,
    private readonly handlers: TransportHandlers,
  ) {
    this.retries = new RetrySchedule(options, options.random);
  }

  /** Current connection state. */
  get state(): ClientState {
    return this._state;
  }

  /** The error that closed the transport (4001, 4003, bad protocol), if any. */
  get lastError(): ProgressClientError | null {
    return this._lastError;
  }

  /** The server's `hello` of the current connection. */
  get hello(): Readonly<HelloFrame> | null {
    return this._hello;
  }

  /** Open the connection (no-op unless idle or closed). */
  connect(): void {
    if (this._state !== "idle" && this._state !== "closed") return;
    this.retries.reset();
    this.authRetried = false;
    this._lastError = null;
    this.listenToNetwork(true);
    this.setState("connecting");
    void this.openSocket();
  }

  /** Close for good (until the next `connect()`): nothing keeps running, nothing is retried. */
  close(): void {
    this.generation++;
    this.connectTimer.stop();
    this.heartbeatTimer.stop();
    this.retryTimer.stop();
    this.listenToNetwork(false);
    this.dropSocket(CloseCode.NORMAL, "client closed");
    this._hello = null;
    this.setState("closed");
  }

  /** Send one frame once `hello` has arrived; dropped otherwise (the owner resends on `hello`). */
  send(frame: ClientFrame): void {
    if (!this.socket || !this._hello || !this.codec) return;
    try {
      this.socket.send(this.codec.encode(frame));
    } catch {
      // The socket is closing; onclose takes it from here.
    }
  }

  /** The one place the state changes; `STATE_TRANSITIONS` says which moves are allowed. */
  private setState(next: ClientState): void {
    if (this._state === next) return;
    const prev = this._state;
    checkTransition(prev, next);
    this._state = next;
    this.handlers.onState({ prev, next });
  }

  private async openSocket(): Promise<void> {
    const generation = ++this.generation;
    const source = this.options.token;
    let token: string | null | undefined;
    try {
      token = typeof source === "function" ? await source() : source;
    } catch (cause) {
      if (generation !== this.generation) return;
      this.handlers.onError(new ProgressClientError("token provider failed", { cause }));
      this.handleClose(CloseCode.ABNORMAL, "token provider failed");
      return;
    }
    if (generation !== this.generation) return;
    let codec: WireCodec;
    try {
      codec = this.codec ?? (await loadCodec(this.options.format));
    } catch (cause) {
      if (generation === this.generation) {
        this.fail(new ProgressClientError(`cannot load the ${this.options.format} wire format`, { cause }));
      }
      return;
    }
    if (generation !== this.generation) return;
    this.codec = codec;
    const protocols = [codec.subprotocol];
    if (token) protocols.push(TOKEN_SUBPROTOCOL_PREFIX + token);
    let socket: WebSocketLike;
    try {
      socket = new this.options.WebSocket(this.options.url, protocols);
    } catch (cause) {
      this.fail(new ProgressClientError(`cannot open ${this.options.url}`, { cause }));
      return;
    }
    socket.binaryType = "arraybuffer"; // msgpack frames as bytes, not Blobs (read asynchronously)
    this.socket = socket;
    this._hello = null;
    this.retries.interrupted();
    let opened = false;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (ev) => {
      if (this.socket === socket) this.receive(ev.data);
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const failedHandshake = !this._hello && (!opened || ev.code === CloseCode.ABNORMAL);
      this.handlers.onDisconnect();
      if (failedHandshake) this.handlers.onHandshakeFailure();
      this.handleClose(ev.code, ev.reason);
    };
    socket.onerror = () => {
      // Always followed by onclose, which decides what to do.
    };
    this.connectTimer.start(this.options.connectTimeout, () =>
      this.abandonSocket(CloseCode.HEARTBEAT_TIMEOUT, "no hello from the server", true),
    );
  }

  private receive(data: unknown): void {
    this.armHeartbeat(); // Any frame is a sign of life.
    const frame = this.codec ? this.codec.decode(data) : "frame before the wire format was known";
    if (typeof frame === "string") {
      this.handlers.onError(new ProtocolViolationError(frame));
    } else if (frame.op === "ping") {
      this.send({ op: "pong" });
    } else if (frame.op === "hello") {
      this.onHello(frame);
    } else {
      this.handlers.onFrame(frame);
    }
  }

  private onHello(hello: HelloFrame): void {
    if (hello.protocol !== PROTOCOL_VERSION) {
      this.fail(
        new ProtocolViolationError(`server speaks protocol ${hello.protocol}, this client ${PROTOCOL_VERSION}`),
      );
      return;
    }
    this.connectTimer.stop();
    this._hello = hello;
    this.heartbeatMs =
      this.options.heartbeatTimeout ?? Math.round(hello.heartbeat_s * 1000 * this.options.heartbeatFactor);
    this.retries.opened(Date.now());
    this.authRetried = false;
    this.armHeartbeat();
    const generation = this.generation;
    this.handlers.onFrame(hello); // The owner resubscribes before anyone sees "open".
    if (generation === this.generation) this.setState("open");
  }

  private armHeartbeat(): void {
    if (!this._hello || this.heartbeatMs <= 0) {
      this.heartbeatTimer.stop();
      return;
    }
    this.heartbeatTimer.start(this.heartbeatMs, () =>
      this.abandonSocket(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout"),
    );
  }

  /** Stop using the current socket at once (its own close handshake may hang) and move on. */
  private abandonSocket(code: number, reason: string, failedHandshake = false): void {
    if (!this.socket) return;
    this.dropSocket(code, reason);
    if (failedHandshake) this.handlers.onHandshakeFailure();
    this.handleClose(code, reason);
  }

  /** Detach and close the current socket, if any, and tell the owner it is gone. */
  private dropSocket(code: number, reason: string): void {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onopen = null;
    try {
      socket.close(code, reason);
    } catch {
      // Already closed or not yet open: nothing to do.
    }
    this.handlers.onDisconnect();
  }

  /** The socket (or the attempt to open one) ended with `code`: what the protocol says to do. */
  private handleClose(code: number, reason: string): void {
    this.connectTimer.stop();
    this.heartbeatTimer.stop();
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
          if (generation === this.generation) void this.openSocket(); // unless closed meanwhile
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
    this.retryTimer.start(delayMs, () => void this.openSocket());
  }

  private fail(error: ProgressClientError): void {
    this._lastError = error;
    this.handlers.onError(error);
    this.close();
  }

  private readonly onOffline = (): void => {
    if (this._state === "closed" || this._state === "idle") return;
    // Don't wait for a heartbeat timeout: the socket is dead, and no attempt can succeed now.
    this.generation++;
    this.retryTimer.stop();
    this.connectTimer.stop();
    this.heartbeatTimer.stop();
    this.dropSocket(CloseCode.GOING_AWAY, "offline");
    this.retries.interrupted();
    this.setState("reconnecting");
  };

  private readonly onOnline = (): void => {
    if (this._state !== "reconnecting" && this._state !== "connecting") return;
    if (this.socket) return; // An attempt is already under way.
    this.retryTimer.stop();
    void this.openSocket();
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
