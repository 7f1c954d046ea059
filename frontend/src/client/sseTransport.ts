/**
 * The connection to the bridge over Server-Sent Events (`GET /sse`, docs/protocol.md), for
 * networks that refuse the WebSocket upgrade: the same server frames, one way.
 *
 * The store talks to it as to the WebSocket transport: it sends `subscribe` and `unsubscribe`
 * frames and gets server frames back. An SSE stream cannot be told anything once it is open, so
 * this transport keeps what is subscribed and opens streams to match: one for the jobs (another
 * per `SSE_JOBS_PER_STREAM` more) and one per room, each URL carrying the token and the positions
 * to resume from. A stream whose jobs change is closed and opened again: its other jobs are first
 * subscribed again by the store (`onResubscribe`), from the positions the store holds at that
 * moment, so the bridge resumes each of them gap-free and the store drops what it already had.
 * `ack` and `pong` frames are dropped (there is no way back).
 *
 * One connection is the set of its streams, started by `onReady` (the store then sends its
 * subscribes, as after a WebSocket's `hello`) and ended by the first stream that fails or that
 * the bridge ends (its `close` frame carries a WebSocket close code): every stream is closed, the
 * owner hears `onDisconnect`, and the close code decides as on the WebSocket — stop, ask the
 * token provider again, or start a new connection after a backoff delay, with a fresh token and
 * the store's positions (that policy is `ReconnectingTransport`'s, shared with the WebSocket).
 * (EventSource's own reconnect is never used: it would send the same URL, with the old token and
 * the old jobs.) The state is `open` once every stream has opened.
 *
 * Replies are matched as on the WebSocket: the bridge names a job stream's subscribes by job id
 * (`ref`) and a room's not at all, so the transport puts the `ref` of the store's subscribe back.
 * A stream refused before any message (an HTTP status) is diagnosed as `sseRefusal.ts` says: it
 * ends the connection with the close code the WebSocket would have met, or becomes the `error`
 * frame of the stream's one subscribe.
 *
 * Not checked here: a silent stream. The bridge's keep-alives are SSE comments, which EventSource
 * does not pass on, so a connection that dies without the TCP connection closing goes unnoticed
 * until the network says so (the WebSocket's heartbeat has no counterpart).
 */
import { CloseCode } from "./closeCodes.js";
import { ProgressClientError, ProtocolViolationError } from "./errors.js";
import { ErrorCode, type ClientFrame, type ServerFrame, type StreamPosition } from "./frames.js";
import {
  ReconnectingTransport,
  type ReconnectHandlers,
  type ReconnectOptions,
  type ReleaseReason,
} from "./reconnectingTransport.js";
import { askWhyRefused, NO_ANSWER, refusalAction, type FetchLike } from "./sseRefusal.js";
import { isJobId, SSE_JOBS_PER_STREAM, streamUrl } from "./sseUrl.js";
import { Timer } from "./timer.js";
import { parseSseFrame } from "./wire.js";

/** `EventSource.readyState` of a source that gave up (a refused request, or `close()`). */
const CLOSED = 2;

/** A minimal EventSource, as the browser (and the `eventsource` package) provide it. */
export interface EventSourceLike {
  /** 0 connecting, 1 open, 2 closed. */
  readonly readyState: number;
  /** Called when the response started (HTTP 200 with `text/event-stream`). */
  onopen: ((ev: unknown) => void) | null;
  /** Called for every message without an `event:` name. */
  onmessage: ((ev: { data: unknown }) => void) | null;
  /** Called when the request failed or the stream broke. */
  onerror: ((ev: unknown) => void) | null;
  /** Stop; nothing more is delivered. */
  close(): void;
}

/** An EventSource constructor (`globalThis.EventSource`, or the `eventsource` package's). */
export type EventSourceConstructor = new (url: string) => EventSourceLike;

/** What the SSE transport needs, defaults applied (`resolveOptions` builds it). */
export interface SseTransportOptions extends ReconnectOptions {
  /** The bridge's SSE endpoint, e.g. `https://example.com/sse`. */
  url: string;
  /** EventSource implementation. */
  EventSource: EventSourceConstructor;
  /** To learn the status of a refused stream; `null` treats every refusal as an outage. */
  fetch: FetchLike | null;
  /** Time a stream may take to open, in ms. */
  connectTimeout: number;
}

/** What the SSE transport reports, synchronously, to its owner. */
export interface SseTransportHandlers extends ReconnectHandlers {
  /** A connection starts: send the subscribes (as after a WebSocket's `hello`). */
  onReady(): void;
  /** A server frame from one of the streams (`ref`s are the store's own). */
  onFrame(frame: ServerFrame): void;
  /** A stream is about to reopen: subscribe these jobs again, from their current positions. */
  onResubscribe(jobIds: readonly string[]): void;
  /** The connection is gone: nothing more can be sent on it, no reply will come. */
  onDisconnect(): void;
}

/** A subscribe carried by a stream: the ref of the store's frame until answered, and positions. */
interface Member {
  ref: string | null;
  positions: Record<string, StreamPosition>;
}

/** One EventSource and what it watches: jobs (members by job id) or a room (its one member). */
interface Stream {
  readonly key: string;
  readonly room: string | null;
  readonly members: Map<string, Member>;
  source: EventSourceLike | null;
  opened: boolean;
  readonly openTimer: Timer;
}

/** Connections over SSE, reopened until `close()` or a close code that says stop. */
export class SseTransport extends ReconnectingTransport<SseTransportOptions, SseTransportHandlers> {
  /** Between `onReady` and the end of the connection: subscribes are taken. */
  private live = false;
  private token: string | null = null;
  private readonly streams = new Map<string, Stream>();
  private readonly dirty = new Set<string>();
  private reconcileQueued = false;
  /** While the store resubscribes a reopening stream's jobs: their frames update, not reopen. */
  private resubscribing = false;
  private streamCounter = 0;

  /** Take one frame of the store: subscribes and unsubscribes shape the streams; others are dropped. */
  send(frame: ClientFrame): void {
    if (!this.live) return;
    const ref = "ref" in frame && typeof frame.ref === "string" ? frame.ref : null;
    if (frame.op === "subscribe") {
      if ("job_id" in frame) {
        const position = frame.epoch && frame.last_id ? { epoch: frame.epoch, last_id: frame.last_id } : null;
        this.addJob(frame.job_id, ref, position);
      } else {
        this.addRoom(frame.room, ref, frame.positions ?? {});
      }
    } else if (frame.op === "unsubscribe") {
      const stream = "job_id" in frame ? this.streamOfJob(frame.job_id) : this.streams.get(roomKey(frame.room));
      if (!stream) return;
      stream.members.delete("job_id" in frame ? frame.job_id : frame.room);
      this.markDirty(stream);
    }
  }

  // ── connections ──────────────────────────────────────────────────────────────────────────

  /** A connection starts with the attempt's token: the store subscribes, the streams open. */
  protected open(token: string | null, generation: number): void {
    this.token = token;
    this.live = true;
    this.retries.interrupted();
    this.handlers.onReady(); // The store sends its subscribes: `send` sorts them into streams.
    if (generation === this.generation) this.reconcile();
  }

  protected get attempting(): boolean {
    return this.live; // Its streams may be opening still.
  }

  /** The connection ends: close every stream, then do what `code` says. */
  private drop(code: number, reason: string): void {
    this.generation++;
    this.dropStreams();
    this.closedWith(code, reason);
  }

  protected release(_why: ReleaseReason): void {
    this.dropStreams();
  }

  private dropStreams(): void {
    for (const stream of this.streams.values()) this.closeSource(stream);
    this.streams.clear();
    this.dirty.clear();
    if (this.live) {
      this.live = false;
      this.handlers.onDisconnect();
    }
  }

  /** `open` once every stream has opened (at once when there is none to open). */
  private updateState(): void {
    if (!this.live || this.state === "open") return;
    for (const stream of this.streams.values()) if (!stream.opened) return;
    this.connectionOpened();
    this.setState("open");
  }

  // ── streams ──────────────────────────────────────────────────────────────────────────────

  private addJob(jobId: string, ref: string | null, position: StreamPosition | null): void {
    if (!isJobId(jobId)) {
      // The bridge would refuse the whole stream (HTTP 400); the WebSocket refuses this subscribe.
      const generation = this.generation;
      queueMicrotask(() => {
        if (generation !== this.generation) return;
        const message = `job_id ${JSON.stringify(jobId)} is not a job id`;
        this.handlers.onFrame({ op: "error", ref, code: ErrorCode.BAD_FRAME, message });
      });
      return;
    }
    let stream = this.streamOfJob(jobId);
    if (!stream) {
      stream = [...this.streams.values()].find((s) => s.room === null && s.members.size < SSE_JOBS_PER_STREAM);
      stream ??= this.newStream(`jobs:${++this.streamCounter}`, null);
    }
    stream.members.set(jobId, { ref, positions: position ? { [jobId]: position } : {} });
    this.markDirty(stream);
  }

  private addRoom(room: string, ref: string | null, given: Record<string, StreamPosition | undefined>): void {
    const stream = this.streams.get(roomKey(room)) ?? this.newStream(roomKey(room), room);
    const positions: Record<string, StreamPosition> = {};
    for (const [jobId, position] of Object.entries(given)) if (position) positions[jobId] = position;
    stream.members.set(room, { ref, positions });
    this.markDirty(stream);
  }

  private newStream(key: string, room: string | null): Stream {
    const stream: Stream = { key, room, members: new Map(), source: null, opened: false, openTimer: new Timer() };
    this.streams.set(key, stream);
    return stream;
  }

  private streamOfJob(jobId: string): Stream | undefined {
    for (const stream of this.streams.values()) if (stream.room === null && stream.members.has(jobId)) return stream;
    return undefined;
  }

  /** The stream must be (re)opened; done once for everything the store sends in one go. */
  private markDirty(stream: Stream): void {
    if (this.resubscribing) return; // Its own reopen is under way.
    this.dirty.add(stream.key);
    if (this.reconcileQueued) return;
    this.reconcileQueued = true;
    const generation = this.generation;
    queueMicrotask(() => {
      this.reconcileQueued = false;
      if (generation === this.generation) this.reconcile();
    });
  }

  /** (Re)open the streams whose subscribes changed; close those left with none. */
  private reconcile(): void {
    const generation = this.generation;
    const keys = [...this.dirty];
    this.dirty.clear();
    for (const key of keys) {
      const stream = this.streams.get(key);
      if (!stream) continue;
      this.closeSource(stream);
      if (stream.members.size === 0) {
        this.streams.delete(key);
        continue;
      }
      // Jobs the stream already had resume from where the store is now (fresh refs, too).
      const answered = [...stream.members].filter(([, m]) => m.ref === null).map(([jobId]) => jobId);
      if (stream.room === null && answered.length > 0) {
        this.resubscribing = true;
        try {
          this.handlers.onResubscribe(answered);
        } finally {
          this.resubscribing = false;
        }
        if (generation !== this.generation) return;
      }
      this.openSource(stream);
      if (generation !== this.generation) return;
    }
    this.updateState();
  }

  private openSource(stream: Stream): void {
    const positions: Record<string, StreamPosition> = {};
    for (const member of stream.members.values()) Object.assign(positions, member.positions);
    const target = stream.room !== null ? { room: stream.room } : { jobIds: [...stream.members.keys()] };
    const url = streamUrl(this.options.url, target, positions, this.token);
    let source: EventSourceLike;
    try {
      source = new this.options.EventSource(url);
    } catch (cause) {
      this.fail(new ProgressClientError(`cannot open ${this.options.url}`, { cause }));
      return;
    }
    stream.source = source;
    stream.opened = false;
    source.onopen = () => {
      if (stream.source !== source) return;
      stream.opened = true;
      stream.openTimer.stop();
      this.updateState();
    };
    source.onmessage = (ev) => {
      if (stream.source === source) this.receive(stream, ev.data);
    };
    source.onerror = () => {
      if (stream.source === source) this.streamFailed(stream, source, url);
    };
    stream.openTimer.start(this.options.connectTimeout, () => {
      if (stream.source === source && !stream.opened) this.drop(CloseCode.HEARTBEAT_TIMEOUT, "SSE stream did not open");
    });
  }

  /** Detach and close the stream's EventSource, if any. */
  private closeSource(stream: Stream): void {
    stream.openTimer.stop();
    const source = stream.source;
    stream.source = null;
    stream.opened = false;
    if (!source) return;
    source.onopen = null;
    source.onmessage = null;
    source.onerror = null;
    source.close();
  }

  private receive(stream: Stream, data: unknown): void {
    const frame = typeof data === "string" ? parseSseFrame(data) : "SSE message without text data";
    if (typeof frame === "string") {
      this.handlers.onError(new ProtocolViolationError(frame));
      return;
    }
    switch (frame.op) {
      case "close":
        this.drop(frame.code, frame.reason);
        return;
      case "subscribed": {
        const member = this.memberOf(stream, frame.job_id ?? frame.ref);
        const ref = member?.ref ?? null;
        if (member) member.ref = null; // Answered: a reopen resubscribes it afresh.
        this.handlers.onFrame({ ...frame, ref });
        return;
      }
      case "error": {
        // The answer to one of the stream's subscribes (a refused job or room): no longer watched.
        const key = stream.room ?? (typeof frame.ref === "string" ? frame.ref : null);
        const member = key !== null ? stream.members.get(key) : undefined;
        if (member && key !== null) this.forget(stream, key);
        this.handlers.onFrame({ ...frame, ref: member?.ref ?? null });
        return;
      }
      case "event":
      case "batch":
      case "presence":
        this.handlers.onFrame(frame);
    }
  }

  /** The member a reply is about: the room of a room stream, else the job it names. */
  private memberOf(stream: Stream, job: string | number | null | undefined): Member | undefined {
    if (stream.room !== null) return stream.members.get(stream.room);
    return typeof job === "string" ? stream.members.get(job) : undefined;
  }

  /** Drop a refused member; a stream left with none is closed. */
  private forget(stream: Stream, key: string): void {
    stream.members.delete(key);
    if (stream.members.size > 0) return;
    this.closeSource(stream);
    this.streams.delete(stream.key);
    this.updateState();
  }

  private streamFailed(stream: Stream, source: EventSourceLike, url: string): void {
    // Refused (an HTTP status): EventSource gave up for good. Otherwise the network or the
    // bridge broke the stream, or never answered, and EventSource would retry by itself.
    const refused = !stream.opened && source.readyState === CLOSED;
    this.closeSource(stream);
    if (refused) void this.diagnose(stream, url);
    else this.drop(CloseCode.ABNORMAL, "SSE stream lost");
  }

  /** Ask for the refused stream once more, read the status and body, and act on them. */
  private async diagnose(stream: Stream, url: string): Promise<void> {
    const generation = this.generation;
    // Without `fetch`, at once (no await): nothing to wait for.
    const refusal = this.options.fetch ? await askWhyRefused(this.options.fetch, url) : NO_ANSWER;
    // Meanwhile the connection may have ended, or the stream reopened with other jobs.
    if (generation !== this.generation || this.streams.get(stream.key) !== stream || stream.source) return;
    const only = stream.members.size === 1 ? [...stream.members][0] : undefined;
    const action = refusalAction(refusal, only !== undefined);
    if (action.kind === "close") {
      if (action.violation !== null) this.handlers.onError(new ProtocolViolationError(action.violation));
      this.drop(action.code, action.reason);
    } else if (only) {
      // The bridge's answer to this stream's one subscribe, as the WebSocket's error frame.
      const [key, member] = only;
      this.forget(stream, key);
      this.handlers.onFrame({ op: "error", ref: member.ref, code: action.code, message: action.message });
    }
  }
}

function roomKey(room: string): string {
  return `room:${room}`;
}
