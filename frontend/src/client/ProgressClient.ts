/**
 * The progress-bridge WebSocket client: one connection, many job and room subscriptions,
 * automatic reconnect and gap-free, duplicate-free resume (docs/protocol.md).
 *
 * Framework-free: React hooks live in `src/react/` and only read from this class.
 */
import type { JobSnapshot, ProgressEvent } from "../generated/events";
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
import { CloseCode, closeAction } from "./closeCodes";
import { checkTransition, type ClientState } from "./connectionState";
import {
  AuthenticationError,
  ConnectionForbiddenError,
  ProgressClientError,
  ProtocolViolationError,
  ServerError,
} from "./errors";
import {
  JSON_SUBPROTOCOL,
  PROTOCOL_VERSION,
  TOKEN_SUBPROTOCOL_PREFIX,
  type ClientFrame,
  type HelloFrame,
  type ServerFrame,
  type StreamPosition,
  type SubscribedFrame,
} from "./frames";
import { applyEvent, emptyJobState, fromSnapshot, type JobState } from "./jobState";
import { compareStreamIds, parseStreamId } from "./streamId";
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

/** Counters, for tests and debugging. */
export interface ClientStats {
  /** Events dropped because their id was not greater than the last applied. */
  duplicatesDropped: number;
  /** Events applied. */
  eventsApplied: number;
  /** Connections that reached `hello`. */
  connections: number;
}

/** Options of `subscribe()`. */
export interface SubscribeOptions {
  /** Resume after this position instead of starting from the server's snapshot. */
  position?: StreamPosition;
  /** State loaded over HTTP (`GET /api/jobs/{id}`): seeds the store and sets the position. */
  snapshot?: JobSnapshot;
}

interface JobSub {
  count: number;
  error: ProgressClientError | null;
}

interface RoomSub {
  count: number;
  jobIds: Set<string>;
  error: ProgressClientError | null;
}

type PendingRef = { jobId: string; room?: undefined } | { room: string; jobId?: undefined };

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
  private refCounter = 0;
  private _lastError: ProgressClientError | null = null;

  private readonly emitter = new Emitter<ProgressClientEvents>();
  private readonly jobSubs = new Map<string, JobSub>();
  private readonly roomSubs = new Map<string, RoomSub>();
  private readonly jobs = new Map<string, JobState>();
  private readonly roomCache = new Map<string, readonly JobState[]>();
  private readonly pendingRefs = new Map<string, PendingRef>();
  private readonly pendingAcks = new Map<string, string>();
  /** Jobs whose epoch changed under a live subscription, waiting for their new snapshot. */
  private readonly resyncing = new Set<string>();

  /** Counters; read-only for callers. */
  readonly stats: ClientStats = { duplicatesDropped: 0, eventsApplied: 0, connections: 0 };

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
    return this.jobs.get(jobId);
  }

  /** Why the job's subscription was refused (`forbidden`, `not_found`, …), if it was. */
  getJobError(jobId: string): ProgressClientError | null {
    return this.jobSubs.get(jobId)?.error ?? null;
  }

  /** Why the room's subscription was refused, if it was. */
  getRoomError(room: string): ProgressClientError | null {
    return this.roomSubs.get(room)?.error ?? null;
  }

  /** The room's jobs, newest first; the same array until one of them changes. */
  getRoomJobs(room: string): readonly JobState[] {
    const cached = this.roomCache.get(room);
    if (cached) return cached;
    const sub = this.roomSubs.get(room);
    if (!sub) return EMPTY;
    const list = [...sub.jobIds]
      .map((id) => this.jobs.get(id))
      .filter((s): s is JobState => s !== undefined)
      .sort((a, b) => (b.createdTs ?? 0) - (a.createdTs ?? 0) || a.jobId.localeCompare(b.jobId));
    this.roomCache.set(room, list);
    return list;
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
    this.flushAcks();
    this.toClosed();
  }

  /**
   * Watch one job; connects when idle. The first subscription gets the job's snapshot, then
   * live events; after a reconnect it resumes from the last event applied. Returns the
   * function that stops watching (subscriptions are counted: the last one unsubscribes).
   */
  subscribe(jobId: string, options: SubscribeOptions = {}): () => void {
    if (options.snapshot) this.seed(options.snapshot);
    else if (options.position && !this.jobs.has(jobId)) {
      this.jobs.set(jobId, {
        ...emptyJobState(jobId),
        epoch: options.position.epoch,
        lastId: options.position.last_id,
      });
    }
    let sub = this.jobSubs.get(jobId);
    if (sub) {
      sub.count++;
    } else {
      sub = { count: 1, error: null };
      this.jobSubs.set(jobId, sub);
      if (this._state === "open") this.sendJobSubscribe(jobId);
    }
    if (this._state === "idle") this.connect();
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.releaseJob(jobId);
    };
  }

  /**
   * Watch every job of a room (`user:<name>` or `document:<id>`); connects when idle.
   * Returns the function that stops watching.
   */
  subscribeRoom(room: string): () => void {
    let sub = this.roomSubs.get(room);
    if (sub) {
      sub.count++;
    } else {
      sub = { count: 1, jobIds: new Set(), error: null };
      this.roomSubs.set(room, sub);
      if (this._state === "open") this.sendRoomSubscribe(room);
    }
    if (this._state === "idle") this.connect();
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.releaseRoom(room);
    };
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
    this.pendingRefs.clear();
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
    this.pendingRefs.clear();
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
    switch (frame.op) {
      case "hello":
        this.onHello(frame);
        break;
      case "ping":
        this.send({ op: "pong" });
        break;
      case "subscribed":
        this.onSubscribed(frame);
        break;
      case "event":
        this.applyEvents([frame.event]);
        break;
      case "batch":
        this.applyEvents(frame.events);
        break;
      case "error":
        this.onServerError(frame.code, frame.message, frame.ref ?? undefined);
        break;
      case "unsubscribed":
        break;
    }
  }

  private onHello(hello: HelloFrame): void {
    if (hello.protocol !== PROTOCOL_VERSION) {
      this.fail(
        new ProtocolViolationError(
          `server speaks protocol ${hello.protocol}, this client ${PROTOCOL_VERSION}`,
        ),
      );
      return;
    }
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.hello = hello;
    this.heartbeatMs =
      this.heartbeatOverride ?? Math.round(hello.heartbeat_s * 1000 * this.opts.heartbeatFactor);
    this.openedAt = Date.now();
    this.authRetried = false;
    this.stats.connections++;
    this.armHeartbeat();
    this.setState("open");
    // Resume every subscription from its position; the server replays what was missed.
    for (const [jobId, sub] of this.jobSubs) if (!sub.error) this.sendJobSubscribe(jobId);
    for (const [room, sub] of this.roomSubs) if (!sub.error) this.sendRoomSubscribe(room);
  }

  private onSubscribed(frame: SubscribedFrame): void {
    const pending = frame.ref ? this.pendingRefs.get(frame.ref) : undefined;
    if (frame.ref) this.pendingRefs.delete(frame.ref);
    const room = frame.room ?? pending?.room;
    if (room) {
      this.onRoomSubscribed(room, frame);
      return;
    }
    const jobId = frame.job_id ?? pending?.jobId;
    if (!jobId) {
      this.emit("error", new ProtocolViolationError("subscribed frame names no job or room"));
      return;
    }
    const current = this.jobs.get(jobId);
    const hadPosition = !!current?.lastId && !!current.epoch;
    const reason = frame.reason ?? (frame.recovered ? "ok" : "unknown");
    if (!frame.recovered || !hadPosition) {
      if (!frame.snapshot) {
        if (!frame.recovered) {
          this.emit(
            "error",
            new ProtocolViolationError(`recovered: false without a snapshot for ${jobId}`),
          );
        }
        return;
      }
      this.replaceWithSnapshot(frame.snapshot, frame.recovered, reason, null);
    }
  }

  private onRoomSubscribed(room: string, frame: SubscribedFrame): void {
    const sub = this.roomSubs.get(room);
    if (!sub) return;
    const reason = frame.reason ?? (frame.recovered ? "ok" : "unknown");
    for (const snapshot of frame.jobs ?? []) {
      sub.jobIds.add(snapshot.job_id);
      const current = this.jobs.get(snapshot.job_id);
      // Jobs we hold a position for are replayed by the server; any other takes the snapshot.
      // (The room reply has no per-job `recovered`: an epoch change or a position ahead of the
      // stream is detected here from the snapshot's own position.)
      const keep =
        current?.lastId &&
        current.epoch === snapshot.epoch &&
        safeCompare(current.lastId, snapshot.last_id) <= 0;
      if (!keep) this.replaceWithSnapshot(snapshot, frame.recovered, reason, room);
    }
    // The bridge also reports each resumed job's outcome; a position it could not honour comes
    // with that job's snapshot.
    for (const replay of frame.replays ?? []) {
      sub.jobIds.add(replay.job_id);
      if (!replay.recovered && replay.snapshot) {
        this.replaceWithSnapshot(replay.snapshot, false, replay.reason ?? "unknown", room);
      }
    }
    this.roomChanged(room);
  }

  private replaceWithSnapshot(
    snapshot: JobSnapshot,
    recovered: boolean,
    reason: string,
    room: string | null,
  ): void {
    const state = fromSnapshot(snapshot);
    this.jobs.set(snapshot.job_id, state);
    this.resyncing.delete(snapshot.job_id);
    this.emit("snapshot", { jobId: snapshot.job_id, snapshot, recovered, reason, room });
    this.jobChanged(snapshot.job_id, state);
  }

  private applyEvents(events: readonly ProgressEvent[]): void {
    const changed = new Set<string>();
    for (const event of events) {
      if (this.applyOne(event)) changed.add(event.job_id);
    }
    for (const jobId of changed) {
      const state = this.jobs.get(jobId);
      if (!state) continue;
      this.jobChanged(jobId, state);
      if (state.lastId) this.pendingAcks.set(jobId, state.lastId);
    }
    if (changed.size > 0) this.scheduleAck();
  }

  /** Apply one event unless it was already applied; true when it was applied. */
  private applyOne(event: ProgressEvent): boolean {
    const jobId = event.job_id;
    const rooms = this.roomsOf(event);
    if (!this.jobSubs.has(jobId) && rooms.length === 0) return false;
    const current = this.jobs.get(jobId);
    if (this.resyncing.has(jobId)) return false;
    if (current?.epoch && event.epoch && event.epoch !== current.epoch) {
      // The job's stream was lost and recreated while we watched: our state belongs to the old
      // epoch. Ask for a fresh snapshot rather than mixing two epochs; events until it arrives
      // are covered by it.
      this.resync(jobId);
      return false;
    }
    if (
      current?.lastId &&
      event.id &&
      safeCompare(event.id, current.lastId) <= 0
    ) {
      this.stats.duplicatesDropped++;
      return false;
    }
    for (const room of rooms) {
      const sub = this.roomSubs.get(room);
      if (sub && !sub.jobIds.has(jobId)) {
        sub.jobIds.add(jobId);
        this.roomCache.delete(room);
      }
    }
    this.jobs.set(jobId, applyEvent(current ?? emptyJobState(jobId), event));
    this.stats.eventsApplied++;
    this.emit("event", event);
    return true;
  }

  /** Rooms an event belongs to: those that list its job, or whose name matches it. */
  private roomsOf(event: ProgressEvent): string[] {
    const rooms: string[] = [];
    for (const [room, sub] of this.roomSubs) {
      if (
        sub.jobIds.has(event.job_id) ||
        (event.owner && room === `user:${event.owner}`) ||
        (event.document_id && room === `document:${event.document_id}`)
      ) {
        rooms.push(room);
      }
    }
    return rooms;
  }

  /** Re-subscribe one job without a position, so the server answers with its snapshot. */
  private resync(jobId: string): void {
    if (this.resyncing.has(jobId)) return;
    this.resyncing.add(jobId);
    const current = this.jobs.get(jobId);
    if (current) this.jobs.set(jobId, { ...current, epoch: null, lastId: null });
    if (this.jobSubs.has(jobId)) {
      this.sendJobSubscribe(jobId);
      return;
    }
    for (const [room, sub] of this.roomSubs) if (sub.jobIds.has(jobId)) this.sendRoomSubscribe(room);
  }

  private onServerError(code: string, message: string, ref: string | undefined): void {
    const pending = ref ? this.pendingRefs.get(ref) : undefined;
    if (ref) this.pendingRefs.delete(ref);
    const error = new ServerError(code, message, {
      ...(ref ? { ref } : {}),
      ...(pending?.jobId ? { jobId: pending.jobId } : {}),
      ...(pending?.room ? { room: pending.room } : {}),
    });
    // A refused subscription is not retried on reconnect: the answer would be the same.
    if (pending?.jobId) {
      const sub = this.jobSubs.get(pending.jobId);
      if (sub) sub.error = error;
    } else if (pending?.room) {
      const sub = this.roomSubs.get(pending.room);
      if (sub) sub.error = error;
    }
    this.emit("error", error);
    if (pending?.jobId) {
      const state = this.jobs.get(pending.jobId) ?? emptyJobState(pending.jobId);
      this.emit("job", { jobId: pending.jobId, state });
    }
    if (pending?.room) this.roomChanged(pending.room);
  }

  private jobChanged(jobId: string, state: JobState): void {
    for (const [room, sub] of this.roomSubs) if (sub.jobIds.has(jobId)) this.roomChanged(room);
    this.emit("job", { jobId, state });
  }

  private roomChanged(room: string): void {
    this.roomCache.delete(room);
    this.emit("room", { room, jobs: this.getRoomJobs(room) });
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

  private nextRef(target: PendingRef): string {
    const ref = `r${++this.refCounter}`;
    this.pendingRefs.set(ref, target);
    return ref;
  }

  private position(jobId: string): StreamPosition | null {
    const state = this.jobs.get(jobId);
    return state?.epoch && state.lastId ? { epoch: state.epoch, last_id: state.lastId } : null;
  }

  private sendJobSubscribe(jobId: string): void {
    const ref = this.nextRef({ jobId });
    const pos = this.position(jobId);
    this.send(pos ? { op: "subscribe", job_id: jobId, ...pos, ref } : { op: "subscribe", job_id: jobId, ref });
  }

  private sendRoomSubscribe(room: string): void {
    const sub = this.roomSubs.get(room);
    const positions: Record<string, StreamPosition> = {};
    for (const jobId of sub?.jobIds ?? []) {
      const pos = this.position(jobId);
      if (pos) positions[jobId] = pos;
    }
    const ref = this.nextRef({ room });
    this.send(
      Object.keys(positions).length > 0
        ? { op: "subscribe", room, positions, ref }
        : { op: "subscribe", room, ref },
    );
  }

  private scheduleAck(): void {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this.flushAcks();
    }, this.opts.ackInterval);
  }

  private flushAcks(): void {
    if (!this.socket || !this.hello) return; // Kept; sent after the next hello's first events.
    for (const [jobId, id] of this.pendingAcks) this.send({ op: "ack", job_id: jobId, id });
    this.pendingAcks.clear();
  }

  // ── bookkeeping ──────────────────────────────────────────────────────────────────────────

  private seed(snapshot: JobSnapshot): void {
    const current = this.jobs.get(snapshot.job_id);
    if (
      current?.lastId &&
      current.epoch === snapshot.epoch &&
      safeCompare(current.lastId, snapshot.last_id) >= 0
    ) {
      return; // What we hold is newer.
    }
    this.replaceWithSnapshot(snapshot, true, "ok", null);
  }

  private releaseJob(jobId: string): void {
    const sub = this.jobSubs.get(jobId);
    if (!sub) return;
    if (--sub.count > 0) return;
    this.jobSubs.delete(jobId);
    if (!sub.error) this.send({ op: "unsubscribe", job_id: jobId, ref: this.nextRef({ jobId }) });
    this.forgetIfUnwatched(jobId);
  }

  private releaseRoom(room: string): void {
    const sub = this.roomSubs.get(room);
    if (!sub) return;
    if (--sub.count > 0) return;
    this.roomSubs.delete(room);
    this.roomCache.delete(room);
    if (!sub.error) this.send({ op: "unsubscribe", room, ref: this.nextRef({ room }) });
    for (const jobId of sub.jobIds) this.forgetIfUnwatched(jobId);
  }

  private forgetIfUnwatched(jobId: string): void {
    if (this.jobSubs.has(jobId)) return;
    for (const sub of this.roomSubs.values()) if (sub.jobIds.has(jobId)) return;
    this.jobs.delete(jobId);
    this.pendingAcks.delete(jobId);
    this.resyncing.delete(jobId);
  }

  private emit<K extends keyof ProgressClientEvents>(type: K, payload: ProgressClientEvents[K]): void {
    this.emitter.emit(type, payload);
  }
}

const EMPTY: readonly JobState[] = Object.freeze([]);

/** Compare stream ids; an unparseable id counts as newer, so the event is not lost. */
function safeCompare(a: string, b: string): number {
  if (!parseStreamId(a) || !parseStreamId(b)) return 1;
  return compareStreamIds(a, b);
}
