/**
 * The job store without sockets: server frames and user intents in, job states, reported changes
 * and frames to send out. Every scenario is plain values (docs/protocol.md, "Replay").
 */
import { describe, expect, it } from "vitest";
import type { ProgressClientEvents } from "../src/client/clientEvents";
import { ProtocolViolationError, ServerError } from "../src/client/errors";
import type { HelloFrame, ServerFrame, StreamPosition, SubscribedFrame } from "../src/client/frames";
import { JobStore, type StoreEvent } from "../src/client/jobStore";
import type { JobSnapshot, ProgressEvent } from "../src/generated/events";
import { eventFrom, makeSnapshot } from "./factories";

const HELLO: HelloFrame = { op: "hello", protocol: 1, user: "alice", heartbeat_s: 15, max_frame_bytes: 65_536 };

/** A store, and everything it reported, by kind. */
function storeWithLog() {
  const log: { type: StoreEvent; payload: unknown }[] = [];
  const store = new JobStore((type, payload) => log.push({ type, payload }));
  const of = <K extends StoreEvent>(type: K) =>
    log.filter((entry) => entry.type === type).map((entry) => entry.payload as ProgressClientEvents[K]);
  return {
    store,
    log,
    events: () => of("event").map((e) => e.id),
    snapshots: () => of("snapshot"),
    errors: () => of("error"),
    jobChanges: () => of("job"),
    rooms: () => of("room"),
    presence: () => of("presence"),
  };
}

/** A live progress event of `jobId` with stream id `id`. */
function progress(jobId: string, id: string, percent: number, epoch = "e1", owner = "alice"): ProgressEvent {
  return eventFrom({ type: "processing_progress", job_id: jobId, id, epoch, percent, owner, ts: 100 });
}

function snapshot(jobId: string, epoch: string, lastId: string, fields: Partial<JobSnapshot> = {}): JobSnapshot {
  return makeSnapshot({ job_id: jobId, epoch, last_id: lastId, owner: "alice", ...fields });
}

/** A `subscribed` reply: the fields given, over the defaults of a first job subscribe. */
function subscribed(fields: Partial<Omit<SubscribedFrame, "op">>): ServerFrame {
  return {
    op: "subscribed",
    ref: null,
    recovered: true,
    reason: "ok",
    epoch: null,
    snapshot: null,
    ...fields,
  };
}

/** A store connected and subscribed to `jobId`, holding `snap` (the first subscribe's reply). */
function watching(jobId: string, snap: JobSnapshot) {
  const t = storeWithLog();
  t.store.receive(HELLO);
  t.store.subscribe(jobId);
  const [frame] = t.store.framesToSend();
  t.store.receive(subscribed({ ref: (frame as { ref: string }).ref, job_id: jobId, recovered: true, reason: "ok", snapshot: snap }));
  t.log.length = 0;
  return t;
}

describe("subscriptions", () => {
  it("subscribes once connected (hello), then at once, each with a fresh ref", () => {
    const { store } = storeWithLog();
    // 1. Before hello nothing can be sent.
    store.subscribe("j1");
    expect(store.framesToSend()).toEqual([]);
    // 2. hello subscribes what is held.
    store.receive(HELLO);
    expect(store.framesToSend()).toEqual([{ op: "subscribe", job_id: "j1", presence: true, ref: "r1" }]);
    expect(store.stats.connections).toBe(1);
    // 3. Connected, a new subscription goes out at once; frames are handed out once.
    store.subscribe("j2");
    expect(store.framesToSend()).toEqual([{ op: "subscribe", job_id: "j2", presence: true, ref: "r2" }]);
    expect(store.framesToSend()).toEqual([]);
  });

  it("counts holders: only the last release unsubscribes, and it forgets the job", () => {
    const t = watching("j", snapshot("j", "e1", "5-0"));
    t.store.subscribe("j"); // A second holder: no second subscribe.
    expect(t.store.framesToSend()).toEqual([]);
    t.store.unsubscribe("j");
    expect(t.store.framesToSend()).toEqual([]);
    expect(t.store.getJob("j")).toBeDefined();
    t.store.unsubscribe("j");
    expect(t.store.framesToSend()).toEqual([{ op: "unsubscribe", job_id: "j", ref: "r2" }]);
    expect(t.store.getJob("j")).toBeUndefined();
    // A release too many does nothing.
    t.store.unsubscribe("j");
    expect(t.store.framesToSend()).toEqual([]);
  });

  it("after a lost connection sends nothing, and on hello resumes from the last applied position", () => {
    // 1. Watch a job and apply one event after its snapshot.
    const t = watching("j", snapshot("j", "e1", "5-0"));
    t.store.receive({ op: "event", event: progress("j", "5-1", 10) });
    // 2. The connection drops: intents are kept but nothing is queued.
    t.store.connectionLost();
    t.store.subscribe("k");
    t.store.unsubscribe("k");
    t.store.flushAcks();
    expect(t.store.framesToSend()).toEqual([]);
    // 3. The next hello resubscribes from (epoch, last applied id).
    t.store.receive(HELLO);
    expect(t.store.framesToSend()).toEqual([
      { op: "subscribe", job_id: "j", presence: true, epoch: "e1", last_id: "5-1", ref: "r2" },
    ]);
    expect(t.store.stats.connections).toBe(2);
  });

  it("a subscribe with a position resumes from it, and the recovered reply keeps the state", () => {
    const t = storeWithLog();
    const position: StreamPosition = { epoch: "e1", last_id: "3-0" };
    t.store.subscribe("j", { position });
    t.store.receive(HELLO);
    expect(t.store.framesToSend()).toEqual([{ op: "subscribe", job_id: "j", presence: true, ...position, ref: "r1" }]);
    // The bridge sends no snapshot here; even if one came, the replay after our position follows
    // and the state must not jump to it.
    const later = snapshot("j", "e1", "3-5", { percent: 35 });
    t.store.receive(subscribed({ ref: "r1", job_id: "j", recovered: true, reason: "ok", snapshot: later }));
    expect(t.snapshots()).toEqual([]);
    t.store.receive({ op: "event", event: progress("j", "3-1", 30) });
    expect(t.events()).toEqual(["3-1"]);
    expect(t.store.getJob("j")?.percent).toBe(30);
  });

  it("a snapshot loaded over HTTP seeds the job unless the store holds a newer position", () => {
    const t = storeWithLog();
    t.store.subscribe("j", { snapshot: snapshot("j", "e1", "5-0", { percent: 50 }) });
    expect(t.snapshots()).toMatchObject([{ jobId: "j", recovered: true, reason: "ok", room: null }]);
    t.store.receive(HELLO);
    expect(t.store.framesToSend()).toEqual([{ op: "subscribe", job_id: "j", presence: true, epoch: "e1", last_id: "5-0", ref: "r1" }]);
    t.store.receive({ op: "event", event: progress("j", "5-1", 60) });
    // A second holder brings the same (now older) snapshot: the newer state stays.
    t.store.subscribe("j", { snapshot: snapshot("j", "e1", "5-0", { percent: 50 }) });
    expect(t.snapshots()).toHaveLength(1);
    expect(t.store.getJob("j")?.percent).toBe(60);
  });

  it("ignores a subscribed reply for a job released while it was on its way", () => {
    const t = storeWithLog();
    t.store.receive(HELLO);
    t.store.subscribe("j");
    t.store.unsubscribe("j");
    t.store.receive(subscribed({ ref: "r1", job_id: "j", recovered: true, reason: "ok", snapshot: snapshot("j", "e1", "1-0") }));
    expect(t.log).toEqual([]);
    expect(t.store.getJob("j")).toBeUndefined();
  });

  it("ignores unsubscribed frames", () => {
    const t = watching("j", snapshot("j", "e1", "1-0"));
    t.store.receive({ op: "unsubscribed", ref: "r9", job_id: "j" });
    expect(t.log).toEqual([]);
    expect(t.store.framesToSend()).toEqual([]);
  });
});

describe("replay and de-duplication", () => {
  it("drops events whose id is not greater, comparing (ms, seq) as integers, not as strings", () => {
    const t = watching("j", snapshot("j", "e1", "9-9"));
    // As strings "9-10" < "9-9" and "10-0" < "9-9": a string comparison would drop both.
    for (const id of ["9-9", "9-8", "9-10", "9-10", "10-0", "9-11", "10-2"]) {
      t.store.receive({ op: "event", event: progress("j", id, 1) });
    }
    expect(t.events()).toEqual(["9-10", "10-0", "10-2"]);
    expect(t.store.stats.duplicatesDropped).toBe(4);
    expect(t.store.stats.eventsApplied).toBe(3);
    expect(t.store.getJob("j")?.lastId).toBe("10-2");
  });

  it("applies a batch in order, drops its repeats, and reports one change per job", () => {
    const t = watching("j", snapshot("j", "e1", "1-0"));
    t.store.receive({
      op: "batch",
      events: [progress("j", "1-1", 10), progress("j", "1-1", 10), progress("j", "1-2", 20)],
    });
    expect(t.events()).toEqual(["1-1", "1-2"]);
    expect(t.jobChanges().map((c) => [c.jobId, c.state.percent])).toEqual([["j", 20]]);
    expect(t.store.stats.duplicatesDropped).toBe(1);
  });

  it("recovered: false replaces the state with the snapshot; events follow its last_id", () => {
    // 1. Hold a position, then the connection drops.
    const t = watching("j", snapshot("j", "e1", "3-0", { percent: 30 }));
    t.store.connectionLost();
    t.store.receive(HELLO);
    const [resubscribe] = t.store.framesToSend();
    expect(resubscribe).toMatchObject({ epoch: "e1", last_id: "3-0" });
    // 2. The history after 3-0 was trimmed: the reply carries the snapshot.
    const snap = snapshot("j", "e1", "7-0", { percent: 90 });
    t.store.receive(subscribed({ ref: "r2", job_id: "j", recovered: false, reason: "trimmed", epoch: "e1", snapshot: snap }));
    expect(t.snapshots()).toEqual([{ jobId: "j", snapshot: snap, recovered: false, reason: "trimmed", room: null }]);
    expect(t.store.getJob("j")).toMatchObject({ percent: 90, lastId: "7-0" });
    // 3. Events the snapshot covers are dropped; later ones apply.
    t.store.receive({ op: "event", event: progress("j", "6-0", 60) });
    t.store.receive({ op: "event", event: progress("j", "7-1", 95) });
    expect(t.events()).toEqual(["7-1"]);
    expect(t.store.getJob("j")?.percent).toBe(95);
  });

  it("recovered: false without a snapshot is a protocol violation, and the state is kept", () => {
    const t = watching("j", snapshot("j", "e1", "3-0", { percent: 30 }));
    t.store.connectionLost();
    t.store.receive(HELLO);
    t.store.framesToSend();
    t.store.receive(subscribed({ ref: "r2", job_id: "j", recovered: false, reason: "trimmed", snapshot: null }));
    const [error] = t.errors();
    expect(error).toBeInstanceOf(ProtocolViolationError);
    expect(error?.message).toBe("recovered: false without a snapshot for j");
    expect(t.store.getJob("j")?.percent).toBe(30);
  });

  it("a live event from a new epoch resubscribes without a position and waits for the snapshot", () => {
    // 1. Watch a job of epoch e1.
    const t = watching("j", snapshot("j", "e1", "5-0", { percent: 50 }));
    // 2. The stream was recreated: an e2 event arrives, with an id "older" than ours.
    t.store.receive({ op: "event", event: progress("j", "1-0", 1, "e2") });
    t.store.receive({ op: "event", event: progress("j", "1-1", 2, "e2") });
    // 3. Neither is applied; one subscribe without a position goes out.
    expect(t.events()).toEqual([]);
    expect(t.store.framesToSend()).toEqual([{ op: "subscribe", job_id: "j", presence: true, ref: "r2" }]);
    // 4. The new epoch's snapshot replaces the state; its later events apply.
    t.store.receive(subscribed({ ref: "r2", job_id: "j", recovered: true, reason: "ok", epoch: "e2", snapshot: snapshot("j", "e2", "1-1", { percent: 2 }) }));
    expect(t.snapshots()).toHaveLength(1);
    expect(t.store.getJob("j")).toMatchObject({ epoch: "e2", lastId: "1-1", percent: 2 });
    t.store.receive({ op: "event", event: progress("j", "1-2", 3, "e2") });
    expect(t.events()).toEqual(["1-2"]);
  });

  it("keeps no events of jobs nobody watches", () => {
    const t = watching("j", snapshot("j", "e1", "1-0"));
    t.store.receive({ op: "event", event: progress("other", "1-1", 10) });
    expect(t.log).toEqual([]);
    expect(t.store.getJob("other")).toBeUndefined();
  });
});

describe("errors", () => {
  it("a refused subscription is reported with its job, kept, and not sent again on hello", () => {
    // 1. The server refuses the subscribe.
    const t = storeWithLog();
    t.store.subscribe("j");
    t.store.receive(HELLO);
    t.store.framesToSend();
    t.store.receive({ op: "error", ref: "r1", code: "forbidden", message: "not your job" });
    const [error] = t.errors();
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ code: "forbidden", ref: "r1", jobId: "j", message: "forbidden: not your job" });
    expect(t.store.getJobError("j")).toBe(error);
    // Views learn of it through a job change.
    expect(t.jobChanges().map((c) => c.jobId)).toEqual(["j"]);
    // 2. Reconnect: the refused job is not subscribed again, nor unsubscribed on release.
    t.store.connectionLost();
    t.store.receive(HELLO);
    expect(t.store.framesToSend()).toEqual([]);
    t.store.unsubscribe("j");
    expect(t.store.framesToSend()).toEqual([]);
    expect(t.store.getJobError("j")).toBeNull();
  });

  it("an error frame whose ref is unknown (or of a lost connection) is reported about nothing", () => {
    const t = storeWithLog();
    t.store.subscribe("j");
    t.store.receive(HELLO);
    t.store.framesToSend();
    t.store.connectionLost(); // r1 was sent on this connection.
    t.store.receive({ op: "error", ref: "r1", code: "forbidden", message: "late" });
    t.store.receive({ op: "error", ref: null, code: "rate_limited", message: "slow down" });
    expect(t.errors().map((e) => [(e as ServerError).code, (e as ServerError).jobId])).toEqual([
      ["forbidden", undefined],
      ["rate_limited", undefined],
    ]);
    expect(t.store.getJobError("j")).toBeNull();
    expect(t.jobChanges()).toEqual([]);
  });

  it("a subscribed frame that names no job or room is a protocol violation", () => {
    const t = storeWithLog();
    t.store.receive(HELLO);
    t.store.receive(subscribed({ ref: "r404", recovered: true }));
    expect(t.errors().map((e) => [e.name, e.message])).toEqual([
      ["ProtocolViolationError", "subscribed frame names no job or room"],
    ]);
  });
});

describe("acks", () => {
  it("carry each job's last applied id, once, and wait for a connection", () => {
    // 1. Events of two jobs.
    const t = watching("a", snapshot("a", "e1", "1-0"));
    t.store.subscribe("b");
    t.store.framesToSend();
    t.store.receive({ op: "batch", events: [progress("a", "1-1", 1), progress("a", "1-2", 2)] });
    t.store.receive({ op: "event", event: progress("b", "2-1", 1) });
    // 2. One ack per job, with its last id.
    expect(t.store.hasPendingAcks).toBe(true);
    t.store.flushAcks();
    expect(t.store.framesToSend()).toEqual([
      { op: "ack", job_id: "a", id: "1-2" },
      { op: "ack", job_id: "b", id: "2-1" },
    ]);
    expect(t.store.hasPendingAcks).toBe(false);
    t.store.flushAcks();
    expect(t.store.framesToSend()).toEqual([]);
    // 3. An ack due while disconnected waits for the next connection.
    t.store.receive({ op: "event", event: progress("a", "1-3", 3) });
    t.store.connectionLost();
    t.store.flushAcks();
    expect(t.store.framesToSend()).toEqual([]);
    expect(t.store.hasPendingAcks).toBe(true);
    t.store.receive(HELLO);
    t.store.framesToSend();
    t.store.flushAcks();
    expect(t.store.framesToSend()).toEqual([{ op: "ack", job_id: "a", id: "1-3" }]);
  });
});

describe("presence", () => {
  it("comes with the subscribe's answer, changes with presence frames, and goes with the job", () => {
    // 1. The answer says who watches.
    const t = storeWithLog();
    t.store.receive(HELLO);
    t.store.subscribe("j");
    t.store.framesToSend();
    const snap = snapshot("j", "e1", "1-0");
    t.store.receive(subscribed({ ref: "r1", job_id: "j", snapshot: snap, presence: { watching: 1 } }));
    expect(t.store.getPresence("j")).toEqual({ watching: 1 });
    // 2. A presence frame changes it (users for admins), and is reported.
    t.store.receive({ op: "presence", job_id: "j", watching: 3, users: ["alice", "bob"] });
    expect(t.store.getPresence("j")).toEqual({ watching: 3, users: ["alice", "bob"] });
    expect(t.presence()).toEqual([
      { jobId: "j", presence: { watching: 1 } },
      { jobId: "j", presence: { watching: 3, users: ["alice", "bob"] } },
    ]);
    // 3. One for a job not subscribed (unsubscribed while it was on its way) is dropped.
    t.store.receive({ op: "presence", job_id: "other", watching: 2 });
    expect(t.store.getPresence("other")).toBeUndefined();
    // 4. Unsubscribed, the job's presence is forgotten.
    t.store.unsubscribe("j");
    expect(t.store.getPresence("j")).toBeUndefined();
    expect(t.presence()).toHaveLength(2);
  });
});

describe("rooms", () => {
  function inRoom() {
    const t = storeWithLog();
    t.store.subscribeRoom("user:alice");
    t.store.receive(HELLO);
    expect(t.store.framesToSend()).toEqual([{ op: "subscribe", room: "user:alice", ref: "r1" }]);
    t.store.receive(
      subscribed({
        ref: "r1",
        room: "user:alice",
        recovered: true,
        reason: "ok",
        jobs: [
          snapshot("a1", "e1", "5-0", { created_ts: 100 }),
          snapshot("a2", "e1", "6-0", { created_ts: 200 }),
        ],
      }),
    );
    return t;
  }

  it("lists the room's jobs newest first, and adds the owner's new jobs from their events", () => {
    const t = inRoom();
    const first = t.store.getRoomJobs("user:alice");
    expect(first.map((j) => j.jobId)).toEqual(["a2", "a1"]);
    expect(t.store.getRoomJobs("user:alice")).toBe(first); // The same array until a change.
    // A job created later joins through its owner; another user's job does not.
    t.store.receive({ op: "event", event: progress("a3", "7-0", 5) });
    t.store.receive({ op: "event", event: progress("b1", "7-1", 5, "e1", "bob") });
    expect(t.store.getRoomJobs("user:alice").map((j) => j.jobId)).toEqual(["a2", "a1", "a3"]);
    expect(t.store.getJob("b1")).toBeUndefined();
    expect(t.rooms().at(-1)?.jobs.map((j) => j.jobId)).toEqual(["a2", "a1", "a3"]);
  });

  it("resumes with every job's position; a replay the server could not honour takes its snapshot", () => {
    // 1. Apply one event of a1, then the connection drops.
    const t = inRoom();
    t.store.receive({ op: "event", event: progress("a1", "5-1", 10) });
    t.store.connectionLost();
    // 2. hello: the room is resubscribed with each job's position.
    t.store.receive(HELLO);
    expect(t.store.framesToSend()).toEqual([
      {
        op: "subscribe",
        room: "user:alice",
        positions: { a1: { epoch: "e1", last_id: "5-1" }, a2: { epoch: "e1", last_id: "6-0" } },
        ref: "r2",
      },
    ]);
    // 3. a2's stream was recreated: its replay comes with a snapshot; a1 is replayed.
    const a2 = snapshot("a2", "e9", "1-0", { percent: 3 });
    t.log.length = 0;
    t.store.receive(
      subscribed({
        ref: "r2",
        room: "user:alice",
        recovered: false,
        reason: "ok",
        jobs: [],
        replays: [
          { job_id: "a1", recovered: true, reason: "ok", epoch: "e1", snapshot: null },
          { job_id: "a2", recovered: false, reason: "epoch_changed", epoch: a2.epoch, snapshot: a2 },
        ],
      }),
    );
    expect(t.snapshots()).toEqual([{ jobId: "a2", snapshot: a2, recovered: false, reason: "epoch_changed", room: "user:alice" }]);
    expect(t.store.getJob("a1")?.lastId).toBe("5-1");
    expect(t.store.getJob("a2")).toMatchObject({ epoch: "e9", percent: 3 });
  });

  it("a listed job takes its snapshot unless it holds a state of the same epoch at least as new", () => {
    // (A job the client also watches by id can be listed before that subscribe's events caught
    // up: the bridge then goes on after the room's snapshot, so an older state must give way.)
    const t = inRoom();
    t.log.length = 0;
    t.store.connectionLost();
    t.store.receive(HELLO);
    t.store.framesToSend();
    const listed = (a1: JobSnapshot) =>
      subscribed({
        ref: null,
        room: "user:alice",
        recovered: true,
        reason: "ok",
        jobs: [a1, snapshot("a2", "e2", "1-0", { percent: 1 })],
      });
    // a1 held at 5-0, listed newer (9-0): the snapshot replaces it. a2: another epoch.
    t.store.receive(listed(snapshot("a1", "e1", "9-0", { percent: 99 })));
    expect(t.snapshots().map((s) => s.jobId)).toEqual(["a1", "a2"]);
    expect(t.store.getJob("a1")).toMatchObject({ lastId: "9-0", percent: 99 });
    // Listed older (7-0) than held (9-0), same epoch: kept.
    t.log.length = 0;
    t.store.receive(listed(snapshot("a1", "e1", "7-0", { percent: 70 })));
    expect(t.snapshots().map((s) => s.jobId)).toEqual([]);
    expect(t.store.getJob("a1")).toMatchObject({ lastId: "9-0", percent: 99 });
  });

  it("releasing the room forgets its jobs, except those also watched by id", () => {
    const t = inRoom();
    t.store.subscribe("a1");
    t.store.framesToSend();
    t.store.unsubscribeRoom("user:alice");
    expect(t.store.framesToSend()).toEqual([{ op: "unsubscribe", room: "user:alice", ref: "r3" }]);
    expect(t.store.getJob("a1")).toBeDefined();
    expect(t.store.getJob("a2")).toBeUndefined();
    expect(t.store.getRoomJobs("user:alice")).toEqual([]);
  });

  it("a refused room is reported with its room and not sent again", () => {
    const t = storeWithLog();
    t.store.subscribeRoom("user:bob");
    t.store.receive(HELLO);
    t.store.framesToSend();
    t.store.receive({ op: "error", ref: "r1", code: "forbidden", message: "not your room" });
    expect(t.store.getRoomError("user:bob")).toMatchObject({ code: "forbidden", room: "user:bob" });
    expect(t.rooms().map((r) => r.room)).toEqual(["user:bob"]);
    t.store.connectionLost();
    t.store.receive(HELLO);
    expect(t.store.framesToSend()).toEqual([]);
  });
});
