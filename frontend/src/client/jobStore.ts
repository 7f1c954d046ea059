/**
 * The client's job store: subscriptions, each job's state, and what every server frame does to
 * them. No I/O and no timers: feed it server frames (`receive`), user intents (`subscribe`,
 * `unsubscribe`, …) and connection news (`connectionLost`), then write out `framesToSend()`.
 * It reports what changed through the `emit` function it was given, synchronously, as it happens.
 *
 * It applies the replay rules of docs/protocol.md ("Replay"): it remembers each job's
 * `(epoch, last id)` and sends it on every (re)subscribe; drops events whose id is not greater
 * (ids compare as `(ms, seq)` integer pairs); replaces a job's state with the server's snapshot
 * when a position could not be honoured; and resubscribes without a position when a live event
 * comes from a new epoch. Not kept: events of a job nobody watches (directly or through a room).
 * Which frames may go out, with which `ref` and positions, is `StoreOutbox`'s.
 */
import type { JobPresence, JobSnapshot, ProgressEvent } from "../generated/events.js";
import type { ProgressClientEvents } from "./clientEvents.js";
import { ProtocolViolationError, ServerError, type ProgressClientError } from "./errors.js";
import type {
  ClientFrame,
  ErrorCode,
  PresenceFrame,
  ServerFrame,
  StreamPosition,
  SubscribedFrame,
} from "./frames.js";
import { applyEvent, emptyJobState, fromSnapshot, type JobState } from "./jobState.js";
import { StoreOutbox } from "./storeOutbox.js";
import { isAfter } from "./streamId.js";
import { Subscriptions } from "./subscriptions.js";

/** The events the store reports (`state`, `transport` and `retry` are the connection's). */
export type StoreEvent = Exclude<keyof ProgressClientEvents, "state" | "transport" | "retry">;

/** How the store reports a change; called synchronously, once the change is in the store. */
export type StoreEmit = <K extends StoreEvent>(type: K, payload: ProgressClientEvents[K]) => void;

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

const EMPTY: readonly JobState[] = Object.freeze([]);

/** Subscriptions and job states of one client, and the frames they call for. */
export class JobStore {
  /** Counters; read-only for callers. */
  readonly stats: ClientStats = { duplicatesDropped: 0, eventsApplied: 0, connections: 0 };

  private readonly subs = new Subscriptions();
  private readonly out = new StoreOutbox(this.subs, (jobId) => this.position(jobId));
  private readonly jobs = new Map<string, JobState>();
  private readonly roomCache = new Map<string, readonly JobState[]>();
  /** Per job, the last id applied and not yet acknowledged to the server. */
  private readonly pendingAcks = new Map<string, string>();
  /** Jobs whose epoch changed under a live subscription, waiting for their new snapshot. */
  private readonly resyncing = new Set<string>();
  /** Who watches each job subscribed by id, as the bridge last said. */
  private readonly presence = new Map<string, JobPresence>();

  constructor(private readonly emit: StoreEmit) {}

  // ── queries ──────────────────────────────────────────────────────────────────────────────

  /** The job's current state, or `undefined` before its snapshot or first event arrived. */
  getJob(jobId: string): JobState | undefined {
    return this.jobs.get(jobId);
  }

  /** Who watches the job (subscribed by id), or `undefined` before the bridge said. */
  getPresence(jobId: string): JobPresence | undefined {
    return this.presence.get(jobId);
  }

  /** Why the job's subscription was refused (`forbidden`, `not_found`, …), if it was. */
  getJobError(jobId: string): ProgressClientError | null {
    return this.subs.errorOf({ jobId });
  }

  /** Why the room's subscription was refused, if it was. */
  getRoomError(room: string): ProgressClientError | null {
    return this.subs.errorOf({ room });
  }

  /** The room's jobs, newest first; the same array until one of them changes. */
  getRoomJobs(room: string): readonly JobState[] {
    const cached = this.roomCache.get(room);
    if (cached) return cached;
    if (!this.subs.hasRoom(room)) return EMPTY;
    const list = [...this.subs.roomJobIds(room)]
      .map((id) => this.jobs.get(id))
      .filter((s): s is JobState => s !== undefined)
      .sort((a, b) => (b.createdTs ?? 0) - (a.createdTs ?? 0) || a.jobId.localeCompare(b.jobId));
    this.roomCache.set(room, list);
    return list;
  }

  /** The position a (re)subscribe of this job resumes from, if the store holds one. */
  position(jobId: string): StreamPosition | null {
    const state = this.jobs.get(jobId);
    return state?.epoch && state.lastId ? { epoch: state.epoch, last_id: state.lastId } : null;
  }

  /** Whether applied events wait for an `ack` (see `flushAcks`). */
  get hasPendingAcks(): boolean {
    return this.pendingAcks.size > 0;
  }

  // ── output ───────────────────────────────────────────────────────────────────────────────

  /** The frames to write now, oldest first; each is returned once. */
  framesToSend(): ClientFrame[] {
    return this.out.take();
  }

  // ── user intents ─────────────────────────────────────────────────────────────────────────

  /** Hold one more subscription of a job; the first one subscribes (now if connected, else on `hello`). */
  subscribe(jobId: string, options: SubscribeOptions = {}): void {
    if (options.snapshot) this.seed(options.snapshot);
    else if (options.position && !this.jobs.has(jobId)) {
      this.jobs.set(jobId, {
        ...emptyJobState(jobId),
        epoch: options.position.epoch,
        lastId: options.position.last_id,
      });
    }
    if (this.subs.holdJob(jobId)) this.out.subscribeJob(jobId);
  }

  /** Release one subscription of a job; the last one unsubscribes and forgets an unwatched job. */
  unsubscribe(jobId: string): void {
    const released = this.subs.releaseJob(jobId);
    if (!released) return;
    if (released === "unsubscribe") this.out.unsubscribeJob(jobId);
    this.forgetIfUnwatched(jobId);
  }

  /** Hold one more subscription of a room (`user:<name>` or `document:<id>`). */
  subscribeRoom(room: string): void {
    if (this.subs.holdRoom(room)) this.out.subscribeRoom(room);
  }

  /** Release one subscription of a room; the last one unsubscribes. */
  unsubscribeRoom(room: string): void {
    const released = this.subs.releaseRoom(room);
    if (!released) return;
    this.roomCache.delete(room);
    if (released.action === "unsubscribe") this.out.unsubscribeRoom(room);
    for (const jobId of released.jobIds) this.forgetIfUnwatched(jobId);
  }

  /** Queue one `ack` per job with the last id applied; kept for later while disconnected. */
  flushAcks(): void {
    if (!this.out.connected) return;
    for (const [jobId, id] of this.pendingAcks) this.out.send({ op: "ack", job_id: jobId, id });
    this.pendingAcks.clear();
  }

  // ── connection ───────────────────────────────────────────────────────────────────────────

  /**
   * A connection is ready for subscribes: the WebSocket's `hello`, or an SSE connection starting.
   * Every subscription is resumed from its position.
   */
  connectionReady(): void {
    this.stats.connections++;
    this.out.opened();
  }

  /**
   * Subscribe these jobs again, each from its current position (an SSE stream reopened with
   * other jobs resumes the ones it had): jobs not (or no longer) held, or refused, are skipped.
   */
  resubscribe(jobIds: Iterable<string>): void {
    this.out.resubscribe(jobIds);
  }

  /** The connection is gone: nothing can be sent, and replies to refs sent on it never come. */
  connectionLost(): void {
    this.out.lost();
  }

  /** Apply one server frame (`ping` is the transport's business and ignored here). */
  receive(frame: ServerFrame): void {
    switch (frame.op) {
      case "hello":
        this.connectionReady();
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
        this.onServerError(
          frame.code,
          frame.message,
          typeof frame.ref === "string" ? frame.ref : undefined,
        );
        break;
      case "presence":
        this.onPresence(frame);
        break;
      case "unsubscribed":
      case "ping":
        break;
    }
  }

  private onSubscribed(frame: SubscribedFrame): void {
    const target = this.subs.takeRef(frame.ref);
    const room = frame.room ?? target?.room;
    if (room) {
      this.onRoomSubscribed(room, frame);
      return;
    }
    const jobId = frame.job_id ?? target?.jobId;
    if (!jobId) {
      this.emit("error", new ProtocolViolationError("subscribed frame names no job or room"));
      return;
    }
    if (!this.subs.isWatched(jobId)) return; // Unsubscribed while the reply was on its way.
    if (frame.presence) this.setPresence(jobId, frame.presence);
    const reason = frame.reason ?? (frame.recovered ? "ok" : "unknown");
    // With a position honoured (recovered, and we sent one) the replay follows; otherwise the
    // snapshot is the job's state, and events after its last_id follow.
    if (frame.recovered && this.position(jobId)) return;
    if (!frame.snapshot) {
      if (!frame.recovered) {
        this.emit("error", new ProtocolViolationError(`recovered: false without a snapshot for ${jobId}`));
      }
      return;
    }
    this.replaceWithSnapshot(frame.snapshot, frame.recovered, reason, null);
  }

  private onPresence(frame: PresenceFrame): void {
    if (!this.subs.hasJob(frame.job_id)) return; // Unsubscribed while it was on its way.
    const { watching, users } = frame;
    this.setPresence(frame.job_id, users ? { watching, users } : { watching });
  }

  private setPresence(jobId: string, presence: JobPresence): void {
    this.presence.set(jobId, presence);
    this.emit("presence", { jobId, presence });
  }

  private onRoomSubscribed(room: string, frame: SubscribedFrame): void {
    if (!this.subs.hasRoom(room)) return;
    const reason = frame.reason ?? (frame.recovered ? "ok" : "unknown");
    for (const snapshot of frame.jobs ?? []) {
      this.subs.addRoomJob(room, snapshot.job_id);
      const current = this.jobs.get(snapshot.job_id);
      // A listed job is one we sent no position for: the bridge sends its events after the
      // snapshot's `last_id` only (even when it is also subscribed by id), so a state older than
      // the snapshot would miss the events in between: take the snapshot, unless our state is
      // of the same epoch and at least as new (then the events up to it are duplicates).
      const keep =
        current?.lastId &&
        current.epoch === snapshot.epoch &&
        !isAfter(snapshot.last_id, current.lastId);
      if (!keep) this.replaceWithSnapshot(snapshot, frame.recovered, reason, room);
    }
    // The bridge also reports each resumed job's outcome; a position it could not honour comes
    // with that job's snapshot.
    for (const replay of frame.replays ?? []) {
      this.subs.addRoomJob(room, replay.job_id);
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
  }

  /** Apply one event unless it was already applied; true when it was applied. */
  private applyOne(event: ProgressEvent): boolean {
    const jobId = event.job_id;
    const rooms = this.subs.roomsOf(event);
    if (!this.subs.hasJob(jobId) && rooms.length === 0) return false;
    if (this.resyncing.has(jobId)) return false;
    const current = this.jobs.get(jobId);
    if (current?.epoch && event.epoch && event.epoch !== current.epoch) {
      // The job's stream was lost and recreated while we watched: our state belongs to the old
      // epoch. Ask for a fresh snapshot rather than mixing two epochs; events until it arrives
      // are covered by it.
      this.resync(jobId);
      return false;
    }
    if (current?.lastId && event.id && !isAfter(event.id, current.lastId)) {
      this.stats.duplicatesDropped++;
      return false;
    }
    for (const room of rooms) if (this.subs.addRoomJob(room, jobId)) this.roomCache.delete(room);
    this.jobs.set(jobId, applyEvent(current ?? emptyJobState(jobId), event));
    this.stats.eventsApplied++;
    this.emit("event", event);
    return true;
  }

  /** Re-subscribe one job without a position, so the server answers with its snapshot. */
  private resync(jobId: string): void {
    if (this.resyncing.has(jobId)) return;
    this.resyncing.add(jobId);
    const current = this.jobs.get(jobId);
    if (current) this.jobs.set(jobId, { ...current, epoch: null, lastId: null });
    if (this.subs.hasJob(jobId)) {
      this.out.subscribeJob(jobId);
      return;
    }
    for (const room of this.subs.roomsHolding(jobId)) this.out.subscribeRoom(room);
  }

  private onServerError(code: ErrorCode, message: string, ref: string | undefined): void {
    const target = this.subs.takeRef(ref);
    const error = new ServerError(code, message, {
      ...(ref ? { ref } : {}),
      ...(target?.jobId ? { jobId: target.jobId } : {}),
      ...(target?.room ? { room: target.room } : {}),
    });
    if (target) this.subs.refuse(target, error);
    this.emit("error", error);
    if (target?.jobId) {
      const state = this.jobs.get(target.jobId) ?? emptyJobState(target.jobId);
      this.emit("job", { jobId: target.jobId, state });
    }
    if (target?.room) this.roomChanged(target.room);
  }

  private jobChanged(jobId: string, state: JobState): void {
    for (const room of this.subs.roomsHolding(jobId)) this.roomChanged(room);
    this.emit("job", { jobId, state });
  }

  private roomChanged(room: string): void {
    this.roomCache.delete(room);
    this.emit("room", { room, jobs: this.getRoomJobs(room) });
  }

  // ── bookkeeping ──────────────────────────────────────────────────────────────────────────

  /** Take a snapshot loaded over HTTP, unless what the store holds is as new or newer. */
  private seed(snapshot: JobSnapshot): void {
    const current = this.jobs.get(snapshot.job_id);
    if (current?.lastId && current.epoch === snapshot.epoch && !isAfter(snapshot.last_id, current.lastId)) {
      return;
    }
    this.replaceWithSnapshot(snapshot, true, "ok", null);
  }

  private forgetIfUnwatched(jobId: string): void {
    if (this.subs.isWatched(jobId)) return;
    this.jobs.delete(jobId);
    this.pendingAcks.delete(jobId);
    this.resyncing.delete(jobId);
    this.presence.delete(jobId);
  }
}
