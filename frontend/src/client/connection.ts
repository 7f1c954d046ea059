/**
 * The client's connection to the bridge: a WebSocket (`Transport`), or Server-Sent Events
 * (`SseTransport`) while WebSockets cannot get through, behind one state, one transport name and
 * one set of handlers (docs/protocol.md, "The client: WebSocket, or SSE").
 *
 * With `mode: "auto"` the client starts on the WebSocket. After `sseFallbackAfter` consecutive
 * WebSocket attempts failed at the handshake (the socket closed before it opened, or abnormally
 * before `hello`, or no `hello` came within `connectTimeout`: what a proxy that refuses the
 * upgrade, swallows it or strips the frames looks like), it falls back to SSE. Each time an SSE connection opens, and every
 * `wsProbeInterval` while it stays on SSE, it tries a WebSocket once more in the background (a
 * probe); the probe's `hello` moves the client back: the SSE streams are closed and the store
 * resubscribes everything on the WebSocket from its positions, so nothing is lost or repeated
 * across the switch, and the state stays `open` throughout. (Probing right after SSE opens also
 * sends a client back at once when the failed handshakes were an outage of the whole bridge, not
 * a blocked upgrade.) `mode: "websocket"` never uses SSE, `mode: "sse"` never a WebSocket.
 *
 * Each transport keeps its own state; the client's follows the one in use (`followState`), and
 * nothing of the other reaches the owner — except a probe's `hello`, which is the switch.
 */
import type { RetryInfo, StateChange, TransportChange } from "./clientEvents.js";
import { checkTransition, followState, type ClientState, type TransportKind } from "./connectionState.js";
import type { ProgressClientError } from "./errors.js";
import type { ClientFrame, HelloFrame, ServerFrame } from "./frames.js";
import type { InnerStateChange } from "./reconnectingTransport.js";
import { SseTransport, type SseTransportOptions } from "./sseTransport.js";
import { Timer } from "./timer.js";
import { Transport, type TransportOptions } from "./transport.js";

/** Which transports the client may use. */
export type TransportMode = "auto" | "websocket" | "sse";

/** What the connection needs, defaults applied (`resolveOptions` builds it). */
export interface ConnectionOptions {
  /** `"auto"`: WebSocket, SSE while WebSocket handshakes fail; or one transport only. */
  mode: TransportMode;
  /** Consecutive WebSocket handshake failures after which `"auto"` falls back to SSE. */
  sseFallbackAfter: number;
  /** While on SSE, try a WebSocket again this often, in ms (and each time SSE opens). */
  wsProbeInterval: number;
  /** The WebSocket transport's options; `null` when `mode` is `"sse"`. */
  websocket: TransportOptions | null;
  /** The SSE transport's options; `null` for WebSocket only (`"websocket"`, or no EventSource). */
  sse: SseTransportOptions | null;
}

/** What the connection reports, synchronously, to its owner. */
export interface ConnectionHandlers {
  /** A server frame of the transport in use (the WebSocket's `hello` included). */
  onFrame(frame: ServerFrame): void;
  /** An SSE connection starts: send the subscribes (a WebSocket's `hello` says it instead). */
  onReady(): void;
  /** SSE reopens a stream: subscribe these jobs again from their current positions. */
  onResubscribe(jobIds: readonly string[]): void;
  /** The connection in use is gone: nothing more can be sent on it, no reply will come. */
  onDisconnect(): void;
  /** The client's state changed. */
  onState(change: StateChange): void;
  /** The client moved to the other transport. */
  onTransport(change: TransportChange): void;
  /** A reconnect attempt was scheduled. */
  onRetry(info: RetryInfo): void;
  /** Something went wrong; when it closed the client, `lastError` is already set. */
  onError(error: ProgressClientError): void;
}

/** One connection to the bridge, on whichever transport gets through. */
export class Connection {
  private _state: ClientState = "idle";
  private _transport: TransportKind;
  private readonly ws: Transport | null;
  private readonly sse: SseTransport | null;
  /** WebSocket attempts in a row that failed at the handshake. */
  private failures = 0;
  /** A WebSocket attempt runs in the background while on SSE. */
  private probing = false;
  /** While a transport is being stopped to switch: its state changes are not the client's. */
  private switching = false;
  private readonly probeTimer = new Timer();

  constructor(
    private readonly options: ConnectionOptions,
    private readonly handlers: ConnectionHandlers,
  ) {
    this._transport = options.mode === "sse" ? "sse" : "websocket";
    this.ws = options.websocket
      ? new Transport(options.websocket, {
          onFrame: (frame) => this.webSocketFrame(frame),
          onDisconnect: () => this.ifUsing("websocket", () => handlers.onDisconnect()),
          onState: (change) => this.webSocketState(change),
          onRetry: (info) => this.ifUsing("websocket", () => handlers.onRetry(info)),
          onError: (error) => this.ifUsing("websocket", () => handlers.onError(error)),
          onHandshakeFailure: () => this.handshakeFailed(),
        })
      : null;
    this.sse = options.sse
      ? new SseTransport(options.sse, {
          onReady: () => this.ifUsing("sse", () => handlers.onReady()),
          onFrame: (frame) => this.ifUsing("sse", () => handlers.onFrame(frame)),
          onResubscribe: (jobIds) => this.ifUsing("sse", () => handlers.onResubscribe(jobIds)),
          onDisconnect: () => this.ifUsing("sse", () => handlers.onDisconnect()),
          onState: (change) => this.sseState(change),
          onRetry: (info) => this.ifUsing("sse", () => handlers.onRetry(info)),
          onError: (error) => this.ifUsing("sse", () => handlers.onError(error)),
        })
      : null;
  }

  /** The client's state. */
  get state(): ClientState {
    return this._state;
  }

  /** The transport in use (or being tried). */
  get transport(): TransportKind {
    return this._transport;
  }

  /** The error that closed the transport in use, if any. */
  get lastError(): ProgressClientError | null {
    return this.current()?.lastError ?? null;
  }

  /** The WebSocket's `hello` while on a WebSocket; `null` on SSE (it has none). */
  get hello(): Readonly<HelloFrame> | null {
    return this._transport === "websocket" ? (this.ws?.hello ?? null) : null;
  }

  /** Open the connection (no-op unless idle or closed); `"auto"` starts on a WebSocket. */
  connect(): void {
    if (this._state !== "idle" && this._state !== "closed") return;
    this.failures = 0;
    this.use(this.options.mode === "sse" ? "sse" : "websocket", "a new connection");
    this.current()?.connect();
  }

  /** Close for good (until the next `connect()`). */
  close(): void {
    this.stopProbing();
    this.quietly(() => {
      this.ws?.close();
      this.sse?.close();
    });
    this.setState("closed");
  }

  /** Send one frame on the transport in use. */
  send(frame: ClientFrame): void {
    if (this._transport === "websocket") this.ws?.send(frame);
    else this.sse?.send(frame);
  }

  private current(): Transport | SseTransport | null {
    return this._transport === "websocket" ? this.ws : this.sse;
  }

  private ifUsing(transport: TransportKind, report: () => void): void {
    if (this._transport === transport) report();
  }

  private quietly(stop: () => void): void {
    this.switching = true;
    try {
      stop();
    } finally {
      this.switching = false;
    }
  }

  private use(next: TransportKind, reason: string): void {
    if (this._transport === next) return;
    const prev = this._transport;
    this._transport = next;
    this.handlers.onTransport({ prev, next, reason });
  }

  private follow(inner: ClientState): void {
    this.setState(followState(this._state, inner));
  }

  private setState(next: ClientState): void {
    if (this._state === next) return;
    const prev = this._state;
    checkTransition(prev, next);
    this._state = next;
    this.handlers.onState({ prev, next, transport: this._transport });
  }

  // ── the WebSocket ────────────────────────────────────────────────────────────────────────

  private webSocketFrame(frame: ServerFrame): void {
    if (this._transport === "websocket") {
      if (frame.op === "hello") this.failures = 0; // Only failures in a row count.
      this.handlers.onFrame(frame);
      return;
    }
    if (!this.probing || frame.op !== "hello") return;
    // The probe got through: move to it. Closing SSE tells the store its connection is gone;
    // the hello then makes it resubscribe everything on the WebSocket from its positions.
    this.probing = false;
    this.probeTimer.stop();
    this.quietly(() => this.sse?.close());
    this.failures = 0;
    this.use("websocket", "a WebSocket got through again");
    this.handlers.onFrame(frame); // The transport moves to open right after: so does the client.
  }

  private webSocketState(change: InnerStateChange): void {
    if (this.switching) return;
    if (this._transport === "websocket") {
      this.follow(change.next);
      return;
    }
    // A probe that gave up on its attempt (it would retry by itself): stop it, try again later.
    if (this.probing && (change.next === "reconnecting" || change.next === "closed")) {
      this.probing = false;
      this.quietly(() => this.ws?.close());
      this.scheduleProbe();
    }
  }

  private handshakeFailed(): void {
    if (this._transport !== "websocket") return; // A probe: its state says it failed.
    if (this._state === "open" || this._state === "closed") return;
    this.failures++;
    if (this.options.mode !== "auto" || !this.sse || this.failures < this.options.sseFallbackAfter) return;
    // Fall back: the WebSocket stops (its retry would fail alike), SSE starts.
    const failures = this.failures;
    this.quietly(() => this.ws?.close());
    this.use("sse", `${failures} WebSocket handshake${failures === 1 ? "" : "s"} failed`);
    this.sse.connect();
  }

  // ── SSE and the probe ────────────────────────────────────────────────────────────────────

  private sseState(change: InnerStateChange): void {
    if (this.switching || this._transport !== "sse") return;
    this.follow(change.next);
    if (change.next === "open") this.probe(); // Right away: the WebSocket may be back already.
    else if (change.next === "closed") this.stopProbing();
  }

  private probe(): void {
    if (this.options.mode !== "auto" || !this.ws || this._transport !== "sse" || this.probing) return;
    this.probeTimer.stop();
    const network = this.options.websocket?.network;
    if (network && !network.isOnline()) {
      this.scheduleProbe();
      return;
    }
    this.probing = true;
    this.ws.connect();
  }

  private scheduleProbe(): void {
    if (this.options.mode !== "auto" || this._transport !== "sse" || this._state === "closed") return;
    this.probeTimer.start(this.options.wsProbeInterval, () => this.probe());
  }

  private stopProbing(): void {
    this.probeTimer.stop();
    if (!this.probing) return;
    this.probing = false;
    if (this._transport === "sse") this.quietly(() => this.ws?.close());
  }
}
