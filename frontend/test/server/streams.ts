/**
 * The test server's job streams, in memory: append, trim, recreate, and the replay rules of
 * docs/protocol.md ("Replay") answered with the generated frame types.
 */
import type {
  JobSnapshot,
  ProgressEvent,
  StreamPosition,
  SubscribedFrame,
} from "../../src/generated/events";
import { eventFrom, type EventFields, type EventType } from "../factories";
import { snapshotOf } from "./snapshot";

/** Envelope fields the store fills in. */
type StoreFilled = "v" | "id" | "epoch" | "job_id" | "owner" | "document_id" | "ts";

/**
 * What `append` takes: an event's `type` and fields, without the envelope the store fills in;
 * fields with a default in the Python model may be left out (see `makeEvent`).
 */
export type EventBody = {
  [T in EventType]: { type: T } & Omit<EventFields<T>, StoreFilled>;
}[EventType];

/** One job's stream. */
export interface StoredJob {
  readonly jobId: string;
  readonly owner: string;
  /** The document (file name) the job works on; every event carries it. */
  readonly documentId: string | null;
  epoch: string;
  /** History kept (trimming removes the oldest). */
  events: ProgressEvent[];
  /** Every event of this epoch: the snapshot hash survives trimming. */
  all: ProgressEvent[];
  /** Id of the newest entry trimmed away, if any. */
  trimmedThrough: string | null;
}

/** A subscribe's answer for one job: the reply's replay fields and the events that follow it. */
export interface Resumed {
  recovered: boolean;
  reason: SubscribedFrame["reason"];
  /** The job's state when the position was not honoured (or there was none), else `null`. */
  snapshot: JobSnapshot | null;
  events: ProgressEvent[];
}

let epochCounter = 0;

/** Stream ids as `(ms, seq)` pairs; its own code, not the client's, so a client bug shows. */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(Number) as [number, number];
  const [bm, bs] = b.split("-").map(Number) as [number, number];
  return am !== bm ? am - bm : as - bs;
}

/** Every job's stream, with ids that increase across jobs like a Redis clock. */
export class JobStreams {
  private readonly jobs = new Map<string, StoredJob>();
  // Several entries per millisecond, and ms values whose string order differs from numeric.
  private clock = 1_700_000_000_000;
  private seq = 0;

  /** Move the clock (ids and `ts`) forward, as time passing between events. */
  advance(seconds: number): void {
    this.clock += Math.round(seconds * 1000);
  }

  get(jobId: string): StoredJob {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`no job ${jobId}`);
    return job;
  }

  find(jobId: string): StoredJob | undefined {
    return this.jobs.get(jobId);
  }

  ownedBy(owner: string): StoredJob[] {
    return [...this.jobs.values()].filter((j) => j.owner === owner);
  }

  create(jobId: string, owner: string, documentId: string | null = null): void {
    const epoch = `ep${++epochCounter}`;
    this.jobs.set(jobId, { jobId, owner, documentId, epoch, events: [], all: [], trimmedThrough: null });
  }

  append(jobId: string, body: EventBody): ProgressEvent {
    const job = this.get(jobId);
    if (this.seq >= 2) {
      this.clock += 1;
      this.seq = 0;
    } else {
      this.seq += 1;
    }
    const event = eventFrom({
      ...body,
      id: `${this.clock}-${this.seq}`,
      epoch: job.epoch,
      job_id: jobId,
      owner: job.owner,
      document_id: job.documentId,
      ts: this.clock / 1000,
    });
    job.events.push(event);
    job.all.push(event);
    return event;
  }

  trim(jobId: string, keep: number): void {
    const job = this.get(jobId);
    const cut = job.events.length - keep;
    if (cut <= 0) return;
    job.trimmedThrough = job.events[cut - 1]?.id ?? job.trimmedThrough;
    job.events = job.events.slice(cut);
  }

  recreate(jobId: string): void {
    const job = this.get(jobId);
    Object.assign(job, { epoch: `ep${++epochCounter}`, events: [], all: [], trimmedThrough: null });
  }

  snapshot(jobId: string): JobSnapshot {
    const job = this.get(jobId);
    return snapshotOf(job, job.all);
  }

  /**
   * The replay rules for one job: without a position, the snapshot; with one, every event
   * after it, or `recovered: false` with the snapshot (epoch changed, position ahead, trimmed).
   * `repeat` re-sends that many entries at or before the position, as a retry on the wire may.
   */
  resume(jobId: string, position: StreamPosition | null, repeat = 0): Resumed {
    const job = this.get(jobId);
    const snapshot = this.snapshot(jobId);
    if (!position) return { recovered: true, reason: "ok", snapshot, events: [] };
    const last = job.events.at(-1)?.id ?? job.trimmedThrough ?? "0-0";
    let reason: Resumed["reason"] = "ok";
    if (position.epoch !== job.epoch) reason = "epoch_changed";
    else if (compareIds(position.last_id, last) > 0) reason = "ahead";
    else if (job.trimmedThrough && compareIds(position.last_id, job.trimmedThrough) < 0) reason = "trimmed";
    if (reason !== "ok") return { recovered: false, reason, snapshot, events: [] };
    const after = job.events.findIndex((e) => compareIds(e.id!, position.last_id) > 0);
    const from = after === -1 ? job.events.length : after;
    return { recovered: true, reason, snapshot: null, events: job.events.slice(Math.max(0, from - repeat)) };
  }
}
