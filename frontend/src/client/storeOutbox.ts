/**
 * The frames `JobStore` sends, and when they may go. The store decides that a job or a room must
 * be (un)subscribed — a first holder, a last release, an epoch that changed; this says whether a
 * connection can take the frame now, names it with a fresh `ref`, and gives every subscribe the
 * position the store holds (docs/protocol.md, "Replay"). While no connection is ready nothing is
 * queued: a new connection (`opened`) subscribes everything that is held, from its position, and
 * a lost one (`lost`) drops the frames not yet written and the refs no reply will answer.
 */
import type { ClientFrame, StreamPosition } from "./frames.js";
import type { Subscriptions } from "./subscriptions.js";

/** The store's frames out, queued only while a connection is ready for them. */
export class StoreOutbox {
  private _connected = false;
  private frames: ClientFrame[] = [];

  constructor(
    private readonly subs: Subscriptions,
    /** The position a (re)subscribe of this job resumes from, if the store holds one. */
    private readonly position: (jobId: string) => StreamPosition | null,
  ) {}

  /** Between a ready connection and its loss: frames may be sent. */
  get connected(): boolean {
    return this._connected;
  }

  /** The frames to write now, oldest first; each is returned once. */
  take(): ClientFrame[] {
    const frames = this.frames;
    this.frames = [];
    return frames;
  }

  /** A connection is ready: resume every subscription from its position. */
  opened(): void {
    this._connected = true;
    // The server replays what was missed. A refused one is not retried: the answer would be the same.
    for (const jobId of this.subs.acceptedJobs()) this.subscribeJob(jobId);
    for (const room of this.subs.acceptedRooms()) this.subscribeRoom(room);
  }

  /** Subscribe these jobs again from their positions, skipping those not (or no longer) held, or refused. */
  resubscribe(jobIds: Iterable<string>): void {
    const accepted = new Set(this.subs.acceptedJobs());
    for (const jobId of jobIds) if (accepted.has(jobId)) this.subscribeJob(jobId);
  }

  /** The connection is gone: nothing can be sent, and replies to refs sent on it never come. */
  lost(): void {
    this._connected = false;
    this.subs.clearRefs();
    this.frames = [];
  }

  /** Queue `frame` if a connection is ready; dropped otherwise. */
  send(frame: ClientFrame): void {
    if (this._connected) this.frames.push(frame);
  }

  subscribeJob(jobId: string): void {
    if (!this._connected) return; // `opened` subscribes.
    const ref = this.subs.newRef({ jobId });
    const pos = this.position(jobId);
    // `presence`: the answer says who watches, and `presence` frames follow when that changes.
    const frame = { op: "subscribe", job_id: jobId, presence: true, ref } as const;
    this.send(pos ? { ...frame, ...pos } : frame);
  }

  subscribeRoom(room: string): void {
    if (!this._connected) return; // `opened` subscribes.
    const positions: Record<string, StreamPosition> = {};
    for (const jobId of this.subs.roomJobIds(room)) {
      const pos = this.position(jobId);
      if (pos) positions[jobId] = pos;
    }
    const ref = this.subs.newRef({ room });
    this.send(
      Object.keys(positions).length > 0
        ? { op: "subscribe", room, positions, ref }
        : { op: "subscribe", room, ref },
    );
  }

  unsubscribeJob(jobId: string): void {
    if (this._connected) this.send({ op: "unsubscribe", job_id: jobId, ref: this.subs.newRef({ jobId }) });
  }

  unsubscribeRoom(room: string): void {
    if (this._connected) this.send({ op: "unsubscribe", room, ref: this.subs.newRef({ room }) });
  }
}
