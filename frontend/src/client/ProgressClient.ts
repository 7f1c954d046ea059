/**
 * The progress-bridge client: one connection, many job and room subscriptions, automatic
 * reconnect and gap-free, duplicate-free resume (docs/protocol.md) — over a WebSocket, or over
 * Server-Sent Events while WebSockets cannot get through.
 *
 * A thin façade: `JobStore` keeps the jobs and subscriptions and decides what to send,
 * `Connection` keeps a WebSocket or SSE streams open; this class wires them together, throttles
 * acks and emits the events. Framework-free: React hooks live in `src/react/` and only read
 * from it.
 */
import type { JobPresence } from "../generated/events.js";
import type { ProgressClientEvents } from "./clientEvents.js";
import { Connection } from "./connection.js";
import type { ClientState, TransportKind } from "./connectionState.js";
import { Emitter, type Listener } from "./emitter.js";
import type { ProgressClientError } from "./errors.js";
import type { HelloFrame, ServerFrame } from "./frames.js";
import { JobStore, type ClientStats, type SubscribeOptions } from "./jobStore.js";
import type { JobState } from "./jobState.js";
import { resolveOptions, type ProgressClientOptions } from "./options.js";
import { Timer } from "./timer.js";

/**
 * A connection to the bridge that keeps every subscription alive across reconnects.
 *
 * Call `connect()` (or just `subscribe()`, which connects when idle); `close()` stops for good
 * until the next `connect()`. `transport` says whether it runs on a WebSocket or on SSE; both
 * deliver the same events, job states and connection states. Each job's state is kept (see `getJob`) and updated from events
 * applied exactly once in stream order; after a drop the client resumes every subscription from
 * its last `(epoch, id)` and the server replays what was missed. Not guaranteed: events of a job
 * that is not subscribed (directly or through a room) are not kept.
 */
export class ProgressClient {
  /** Counters; read-only for callers. */
  readonly stats: ClientStats;

  private readonly emitter = new Emitter<ProgressClientEvents>();
  private readonly store: JobStore;
  private readonly connection: Connection;
  private readonly ackTimer = new Timer();
  private readonly ackInterval: number;

  /**
   * @throws RangeError for a bad numeric option, format or transport; ProgressClientError
   *   without a WebSocket (or, for `transport: "sse"`, an EventSource) implementation.
   */
  constructor(options: ProgressClientOptions) {
    const resolved = resolveOptions(options);
    this.ackInterval = resolved.ackInterval;
    this.store = new JobStore((type, payload) => this.emitter.emit(type, payload));
    this.stats = this.store.stats;
    this.connection = new Connection(resolved.connection, {
      onFrame: (frame) => this.receive(frame),
      onReady: () => {
        this.store.connectionReady();
        this.flush();
      },
      onResubscribe: (jobIds) => {
        this.store.resubscribe(jobIds);
        this.flush();
      },
      onDisconnect: () => this.store.connectionLost(),
      onState: (change) => {
        if (change.next === "closed") this.ackTimer.stop(); // Pending acks wait for a connection.
        this.emitter.emit("state", change);
      },
      onTransport: (change) => this.emitter.emit("transport", change),
      onRetry: (info) => this.emitter.emit("retry", info),
      onError: (error) => this.emitter.emit("error", error),
    });
  }

  /** Current connection state. */
  get state(): ClientState {
    return this.connection.state;
  }

  /** What the connection runs on (or tries): `"websocket"`, or `"sse"` while WebSockets fail. */
  get transport(): TransportKind {
    return this.connection.transport;
  }

  /** The error that closed the client (4001, 4003, bad protocol), if any. */
  get lastError(): ProgressClientError | null {
    return this.connection.lastError;
  }

  /**
   * The server's `hello` of the current WebSocket connection (user name, heartbeat, limits);
   * `null` on SSE, which has none.
   */
  get serverHello(): Readonly<HelloFrame> | null {
    return this.connection.hello;
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

  /**
   * Who watches the job across every bridge: `watching` connections subscribed to it by id
   * (this one included), and `users` for admins. `undefined` before the bridge said, or when
   * presence is off on the bridge.
   */
  getPresence(jobId: string): JobPresence | undefined {
    return this.store.getPresence(jobId);
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
    this.connection.connect();
  }

  /** Close for good (until the next `connect()`); subscriptions are kept for that. */
  close(): void {
    this.store.flushAcks();
    this.flush();
    this.connection.close();
  }

  /**
   * Watch one job; connects when idle. The first subscription gets the job's snapshot, then
   * live events; after a reconnect it resumes from the last event applied. Returns the
   * function that stops watching (subscriptions are counted: the last one unsubscribes).
   */
  subscribe(jobId: string, options: SubscribeOptions = {}): () => void {
    this.store.subscribe(jobId, options);
    this.flush();
    if (this.state === "idle") this.connect();
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
    if (this.state === "idle") this.connect();
    return once(() => {
      this.store.unsubscribeRoom(room);
      this.flush();
    });
  }

  private receive(frame: ServerFrame): void {
    this.store.receive(frame);
    this.flush();
    if (this.store.hasPendingAcks && !this.ackTimer.pending) {
      this.ackTimer.start(this.ackInterval, () => {
        this.store.flushAcks(); // Kept while disconnected; the next frame reschedules them.
        this.flush();
      });
    }
  }

  /** Write what the store has queued. */
  private flush(): void {
    for (const frame of this.store.framesToSend()) this.connection.send(frame);
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
