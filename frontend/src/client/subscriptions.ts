/**
 * Who watches what: counted job and room subscriptions, the jobs each room is known to hold,
 * why the server refused a subscription, and what each outstanding `ref` is about. Plain
 * bookkeeping for `JobStore`, which decides what to send.
 */
import type { ProgressEvent } from "../generated/events.js";
import type { ProgressClientError } from "./errors.js";

/** What a `ref` sent with a subscribe or unsubscribe is about: one job, or one room. */
export type RefTarget = { jobId: string; room?: undefined } | { room: string; jobId?: undefined };

/** One subscription: how many callers hold it, and why the server refused it (if it did). */
interface Held {
  count: number;
  error: ProgressClientError | null;
}

/** A room subscription; `jobIds` are the room's jobs seen so far. */
interface HeldRoom extends Held {
  jobIds: Set<string>;
}

const NO_JOBS: ReadonlySet<string> = new Set();

/** Counted subscriptions of one client, with their refusals and outstanding refs. */
export class Subscriptions {
  private readonly jobs = new Map<string, Held>();
  private readonly rooms = new Map<string, HeldRoom>();
  private readonly refs = new Map<string, RefTarget>();
  private refCounter = 0;

  /** Count one more holder of the job; true for the first (who must subscribe). */
  holdJob(jobId: string): boolean {
    const held = this.jobs.get(jobId);
    if (held) held.count++;
    else this.jobs.set(jobId, { count: 1, error: null });
    return !held;
  }

  /**
   * Count one holder of the job less. `"unsubscribe"` when that was the last one of a
   * subscription the server accepted, `"forget"` when it was the last of a refused one (nothing
   * to undo on the server), `null` while others still hold it (or nobody did).
   */
  releaseJob(jobId: string): "unsubscribe" | "forget" | null {
    const held = this.jobs.get(jobId);
    if (!held || --held.count > 0) return null;
    this.jobs.delete(jobId);
    return held.error ? "forget" : "unsubscribe";
  }

  /** Count one more holder of the room; true for the first (who must subscribe). */
  holdRoom(room: string): boolean {
    const held = this.rooms.get(room);
    if (held) held.count++;
    else this.rooms.set(room, { count: 1, error: null, jobIds: new Set() });
    return !held;
  }

  /**
   * Count one holder of the room less; like `releaseJob`, plus the room's jobs when it was the
   * last holder (they may now be unwatched).
   */
  releaseRoom(room: string): { action: "unsubscribe" | "forget"; jobIds: ReadonlySet<string> } | null {
    const held = this.rooms.get(room);
    if (!held || --held.count > 0) return null;
    this.rooms.delete(room);
    return { action: held.error ? "forget" : "unsubscribe", jobIds: held.jobIds };
  }

  /** Whether the job is subscribed by id. */
  hasJob(jobId: string): boolean {
    return this.jobs.has(jobId);
  }

  /** Whether the room is subscribed. */
  hasRoom(room: string): boolean {
    return this.rooms.has(room);
  }

  /** Whether the job is watched, by id or through a room. */
  isWatched(jobId: string): boolean {
    if (this.jobs.has(jobId)) return true;
    for (const held of this.rooms.values()) if (held.jobIds.has(jobId)) return true;
    return false;
  }

  /** Jobs subscribed by id that the server has not refused (to subscribe again on `hello`). */
  acceptedJobs(): string[] {
    return [...this.jobs].filter(([, held]) => !held.error).map(([jobId]) => jobId);
  }

  /** Rooms the server has not refused. */
  acceptedRooms(): string[] {
    return [...this.rooms].filter(([, held]) => !held.error).map(([room]) => room);
  }

  /** The room's jobs seen so far (empty when the room is not subscribed). */
  roomJobIds(room: string): ReadonlySet<string> {
    return this.rooms.get(room)?.jobIds ?? NO_JOBS;
  }

  /** Record that the room holds the job; true when that is news. */
  addRoomJob(room: string, jobId: string): boolean {
    const held = this.rooms.get(room);
    if (!held || held.jobIds.has(jobId)) return false;
    held.jobIds.add(jobId);
    return true;
  }

  /** Rooms known to hold the job. */
  roomsHolding(jobId: string): string[] {
    return [...this.rooms].filter(([, held]) => held.jobIds.has(jobId)).map(([room]) => room);
  }

  /** Rooms an event belongs to: those that hold its job, or whose name matches it. */
  roomsOf(event: ProgressEvent): string[] {
    const rooms: string[] = [];
    for (const [room, held] of this.rooms) {
      if (
        held.jobIds.has(event.job_id) ||
        (event.owner && room === `user:${event.owner}`) ||
        (event.document_id && room === `document:${event.document_id}`)
      ) {
        rooms.push(room);
      }
    }
    return rooms;
  }

  /** Why the server refused this subscription, if it did. */
  errorOf(target: RefTarget): ProgressClientError | null {
    const held = target.jobId !== undefined ? this.jobs.get(target.jobId) : this.rooms.get(target.room);
    return held?.error ?? null;
  }

  /** Remember that the server refused this subscription: it is not sent again on reconnect. */
  refuse(target: RefTarget, error: ProgressClientError): void {
    const held = target.jobId !== undefined ? this.jobs.get(target.jobId) : this.rooms.get(target.room);
    if (held) held.error = error;
  }

  /** A new ref for a frame about `target`. */
  newRef(target: RefTarget): string {
    const ref = `r${++this.refCounter}`;
    this.refs.set(ref, target);
    return ref;
  }

  /** What the reply's ref was about, once: the ref is forgotten. */
  takeRef(ref: string | number | null | undefined): RefTarget | undefined {
    // This client sends string refs only: a number (another client's style) is never ours.
    if (typeof ref !== "string" || !ref) return undefined;
    const target = this.refs.get(ref);
    this.refs.delete(ref);
    return target;
  }

  /** Forget every outstanding ref (their connection is gone; no reply will come). */
  clearRefs(): void {
    this.refs.clear();
  }
}
