/**
 * The connection to the bridge: one WebSocket at a time, and everything it takes to keep one
 * open (docs/protocol.md, "Connecting", "Limits and heartbeat", "Close codes").
 *
 * It offers the wire format's subprotocol (`options.format`: JSON text frames or msgpack binary
 * frames) and the token's, waits `connectTimeout` for `hello` and checks its
 * protocol version, answers `ping` with `pong`, counts any frame as a sign of life (silence for
 * `heartbeatFactor × heartbeat_s` drops the socket and reconnects), follows the browser's
 * offline/online events, and reacts to close codes as `closeAction` says: stop, ask the token
 * provider once more, or reconnect after a full-jitter backoff delay. That policy, and the
 * connection state it moves, are `ReconnectingTransport`'s, shared with the SSE transport.
 *
 * It knows nothing about jobs: every frame but `ping` goes to `onFrame`.
 * It reports each attempt that fails at the handshake (`onHandshakeFailure`), so that its owner
 * (`Connection`) can tell a network that refuses WebSockets and fall back to SSE. Its owner may
 * call `close()` from inside any handler: nothing of the abandoned attempt runs on after it.
 */
import { CloseCode } from "./closeCodes.js";
import { ProgressClientError, ProtocolViolationError } from "./errors.js";
import {
  PROTOCOL_VERSION,
  TOKEN_SUBPROTOCOL_PREFIX,
  type ClientFrame,
  type HelloFrame,
  type ServerFrame,
} from "./frames.js";
import {
  ReconnectingTransport,
  type ReconnectHandlers,
  type ReconnectOptions,
  type ReleaseReason,
} from "./reconnectingTransport.js";
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

/** What the transport needs, defaults applied (`resolveOptions` builds it). */
export interface TransportOptions extends ReconnectOptions {
  /** WebSocket URL of the bridge. */
  url: string;
  /** Wire format to ask the bridge for. */
  format: WireFormat;
  /** WebSocket implementation. */
  WebSocket: WebSocketConstructor;
  /** Time allowed from opening the socket to `hello`, in ms. */
  connectTimeout: number;
  /** Silence for this many `hello.heartbeat_s` means a dead connection. */
  heartbeatFactor: number;
  /** Heartbeat timeout in ms, overriding `heartbeatFactor`; `undefined` to use the factor. */
  heartbeatTimeout: number | undefined;
}

/** What the transport reports, synchronously, to its owner. */
export interface TransportHandlers extends ReconnectHandlers {
  /** A server frame other than `ping`; `hello` once it passed the checks, before `open`. */
  onFrame(frame: ServerFrame): void;
  /** The current socket is gone: nothing more can be sent on it, no reply will come. */
  onDisconnect(): void;
  /**
   * An attempt failed at the handshake: its socket closed before it opened, or closed abnormally
   * (1006) or brought no `hello` within `connectTimeout` after it opened. Called before the
   * transport decides what to do next (the owner may `close()` it instead).
   */
  onHandshakeFailure(): void;
}

/** One connection to the bridge, reopened until `close()` or a close code that says stop. */
export class Transport extends ReconnectingTransport<TransportOptions, TransportHandlers> {
  private _hello: HelloFrame | null = null;
  private socket: WebSocketLike | null = null;
  private codec: WireCodec | null = null;
  private heartbeatMs = 0;
  private readonly connectTimer = new Timer();
  private readonly heartbeatTimer = new Timer();

  /** The server's `hello` of the current connection. */
  get hello(): Readonly<HelloFrame> | null {
    return this._hello;
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

  protected get attempting(): boolean {
    return this.socket !== null;
  }

  /** Open a socket with the attempt's token (the wire format's code is loaded on first use). */
  protected async open(token: string | null, generation: number): Promise<void> {
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
      this.closedWith(ev.code, ev.reason);
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
    this.connectionOpened();
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
    this.closedWith(code, reason);
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

  protected release(why: ReleaseReason): void {
    this.connectTimer.stop();
    this.heartbeatTimer.stop();
    if (why === "offline") {
      this.dropSocket(CloseCode.GOING_AWAY, "offline");
    } else {
      this.dropSocket(CloseCode.NORMAL, "client closed");
      this._hello = null;
    }
  }

  /** The socket (or the attempt to open one) ended: its timers stop, then the shared policy. */
  protected override closedWith(code: number, reason: string): void {
    this.connectTimer.stop();
    this.heartbeatTimer.stop();
    super.closedWith(code, reason);
  }
}
