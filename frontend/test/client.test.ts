/**
 * ProgressClient against a real WebSocket server speaking protocol v1 (test/protocolServer.ts).
 * No mocked sockets: every scenario goes over loopback TCP.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AuthenticationError,
  CloseCode,
  ConnectionForbiddenError,
  ServerError,
  type ClientState,
  type ProgressClient,
  type ProgressClientError,
  type RetryInfo,
  type SnapshotInfo,
} from "../src/client/index";
import type { ProgressEvent } from "../src/generated/events";
import { makeZoneInfo } from "./factories";
import { clientFor, sleep, TIMEOUT, waitFor } from "./helpers";
import { ProtocolServer, type ProtocolServerOptions } from "./protocolServer";

let server: ProtocolServer;
const clients: ProgressClient[] = [];

async function startServer(options: ProtocolServerOptions = {}): Promise<void> {
  server = await ProtocolServer.start(options);
}

function track(client: ProgressClient): {
  client: ProgressClient;
  events: ProgressEvent[];
  states: ClientState[];
  snapshots: SnapshotInfo[];
  errors: ProgressClientError[];
  retries: RetryInfo[];
} {
  clients.push(client);
  const out = {
    client,
    events: [] as ProgressEvent[],
    states: [] as ClientState[],
    snapshots: [] as SnapshotInfo[],
    errors: [] as ProgressClientError[],
    retries: [] as RetryInfo[],
  };
  client.on("event", (e) => out.events.push(e));
  client.on("state", (s) => out.states.push(s.next));
  client.on("snapshot", (s) => out.snapshots.push(s));
  client.on("error", (e) => out.errors.push(e));
  client.on("retry", (r) => out.retries.push(r));
  return out;
}

function progress(percent: number): { type: "processing_progress"; percent: number } {
  return { type: "processing_progress", percent };
}

beforeEach(async () => {
  await startServer();
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await server.stop();
});

describe("backoff", () => {
  it("waits the drawn delay between attempts, growing until a connection lasts minUptime", async () => {
    // 1. The server refuses three connections with 1011 (internal error).
    server.refuse = { code: CloseCode.INTERNAL, count: 3 };
    const t = track(clientFor(server, { random: () => 0.999, minReconnectDelay: 20, minUptime: 150 }));
    const attemptTimes: number[] = [];
    const origAccepted = () => server.connectionsAccepted;
    let seen = 0;
    const poll = setInterval(() => {
      if (origAccepted() > seen) {
        seen = origAccepted();
        attemptTimes.push(Date.now());
      }
    }, 1);
    t.client.connect();
    // 2. Three retries, then open.
    await waitFor(() => t.client.state === "open", "open");
    clearInterval(poll);
    expect(t.retries.map((r) => r.attempt)).toEqual([1, 2, 3]);
    expect(t.retries.map((r) => r.delayMs)).toEqual([19, 39, 79]); // 0.999 × 20, 40, 80
    expect(t.retries.every((r) => r.closeCode === CloseCode.INTERNAL)).toBe(true);
    // The gaps between attempts are at least the delays drawn.
    for (let i = 1; i < attemptTimes.length; i++) {
      expect(attemptTimes[i]! - attemptTimes[i - 1]!).toBeGreaterThanOrEqual(t.retries[i - 1]!.delayMs! - 2);
    }
    // 3. The connection stays up past minUptime, then the server restarts (1012).
    await sleep(200);
    server.closeAll(CloseCode.RESTART);
    await waitFor(() => t.retries.length === 4, "fourth retry");
    // 4. The counter was reset: the delay is drawn from the first ceiling again.
    expect(t.retries[3]).toEqual({ attempt: 1, delayMs: 19, closeCode: CloseCode.RESTART });
    await waitFor(() => t.client.state === "open", "open again");
  });

  it("keeps growing when connections drop before minUptime", async () => {
    const t = track(clientFor(server, { random: () => 0.5, minUptime: 10_000 }));
    t.client.connect();
    await waitFor(() => t.client.state === "open", "open");
    for (let i = 1; i <= 3; i++) {
      server.closeAll(CloseCode.SLOW_CONSUMER);
      await waitFor(() => t.retries.length === i, `retry ${i}`);
      await waitFor(() => t.client.state === "open", "open");
    }
    expect(t.retries.map((r) => r.delayMs)).toEqual([25, 50, 100]);
  });
});

describe("subscriptions and resume", () => {
  it("first subscribe takes the snapshot, then live events", async () => {
    // 1. A job already has history before anyone watches.
    server.createJob("job-1");
    server.publish("job-1", { type: "processing_queued", task_name: "pdf.process" });
    server.publish("job-1", { type: "processing_started", attempt: 1 });
    const t = track(clientFor(server));
    // 2. Subscribe: the reply carries the snapshot (no replay of old events).
    t.client.subscribe("job-1");
    await waitFor(() => t.snapshots.length === 1, "snapshot");
    expect(t.snapshots[0]).toMatchObject({ jobId: "job-1", recovered: true, reason: "ok" });
    expect(t.client.getJob("job-1")?.status).toBe("started");
    expect(t.events).toHaveLength(0);
    // 3. Live events follow.
    const live = server.publish("job-1", progress(30));
    await waitFor(() => t.events.length === 1, "live event");
    expect(t.events[0]?.id).toBe(live.id);
    expect(t.client.getJob("job-1")?.percent).toBe(30);
    expect(t.client.getJob("job-1")?.lastId).toBe(live.id);
  });

  it("reconnects with last_id and replays only the missed events", async () => {
    // 1. Connect and watch a job; three events arrive live.
    server.createJob("job-2");
    const t = track(clientFor(server));
    t.client.subscribe("job-2");
    await waitFor(() => t.client.state === "open" && t.snapshots.length === 1, "subscribed");
    const before = [10, 20, 30].map((p) => server.publish("job-2", progress(p)));
    await waitFor(() => t.events.length === 3, "3 live events");
    // 2. The connection drops without a close frame (1006).
    server.killAll();
    await waitFor(() => t.retries.length > 0 && t.client.state === "reconnecting", "reconnecting");
    // 3. Three events are published while the client is away.
    const missed = [40, 50, 60].map((p) => server.publish("job-2", progress(p)));
    // 4. The client comes back and resubscribes from its position.
    await waitFor(() => t.events.length === 6, "6 events");
    const resubscribe = server.framesOf("subscribe").at(-1);
    expect(resubscribe).toMatchObject({ job_id: "job-2", epoch: before[2]!.epoch, last_id: before[2]!.id });
    // 5. Every event exactly once, in order; no new snapshot.
    expect(t.events.map((e) => e.id)).toEqual([...before, ...missed].map((e) => e.id));
    expect(t.snapshots).toHaveLength(1);
    expect(t.client.getJob("job-2")?.percent).toBe(60);
    expect(t.states).toEqual(["connecting", "open", "reconnecting", "open"]);
  });

  it("drops entries the server repeats on replay", async () => {
    // 1. Watch a job and apply two events.
    server.createJob("job-3");
    const t = track(clientFor(server));
    t.client.subscribe("job-3");
    await waitFor(() => t.snapshots.length === 1, "subscribed");
    const first = [1, 2].map((p) => server.publish("job-3", progress(p)));
    await waitFor(() => t.events.length === 2, "2 events");
    // 2. The server restarts; on resume it re-sends two entries the client already has.
    server.repeatOnReplay = 2;
    server.closeAll(CloseCode.RESTART);
    await waitFor(() => t.retries.length > 0 && t.client.state === "reconnecting", "reconnecting");
    const missed = server.publish("job-3", progress(3));
    await waitFor(() => t.events.length === 3, "3 events");
    await sleep(50);
    // 3. The application saw each event once.
    expect(t.events.map((e) => e.id)).toEqual([...first, missed].map((e) => e.id));
    expect(t.client.stats.duplicatesDropped).toBe(2);
  });

  it("applies batch frames in order and de-duplicates them", async () => {
    server.createJob("job-4");
    server.batch = true;
    server.repeatOnReplay = 1;
    const t = track(clientFor(server));
    t.client.subscribe("job-4");
    await waitFor(() => t.snapshots.length === 1, "subscribed");
    const a = server.publish("job-4", progress(5));
    await waitFor(() => t.events.length === 1, "1 event");
    server.killAll();
    await waitFor(() => t.retries.length > 0 && t.client.state === "reconnecting", "reconnecting");
    const missed = [6, 7, 8].map((p) => server.publish("job-4", progress(p)));
    await waitFor(() => t.events.length === 4, "4 events");
    expect(t.events.map((e) => e.id)).toEqual([a, ...missed].map((e) => e.id));
    expect(t.client.stats.duplicatesDropped).toBe(1);
    expect(t.client.getJob("job-4")?.percent).toBe(8);
  });

  it("takes the snapshot when the history after last_id was trimmed (recovered: false)", async () => {
    // 1. Watch a job and apply a zone declaration.
    server.createJob("job-5");
    const t = track(clientFor(server));
    t.client.subscribe("job-5");
    await waitFor(() => t.snapshots.length === 1, "subscribed");
    server.publish("job-5", {
      type: "zones_declared",
      zones: [
        makeZoneInfo({ zone_id: "z0", index: 0, page: 1 }),
        makeZoneInfo({ zone_id: "z1", index: 1, page: 1 }),
      ],
    });
    await waitFor(() => t.events.length === 1, "declared");
    // 2. Drop; while away the job moves on and its history is trimmed past our position.
    server.killAll();
    await waitFor(() => t.retries.length > 0 && t.client.state === "reconnecting", "reconnecting");
    server.publish("job-5", { type: "zone_completed", zone_id: "z0", zone_index: 0, processing_tool: "ocr" });
    server.publish("job-5", { type: "zone_completed", zone_id: "z1", zone_index: 1, processing_tool: "ocr" });
    server.publish("job-5", progress(90));
    server.trim("job-5", 1);
    // 3. The reply says recovered: false, trimmed, and carries the snapshot; state is replaced.
    await waitFor(() => t.snapshots.length === 2, "second snapshot");
    expect(t.snapshots[1]).toMatchObject({ jobId: "job-5", recovered: false, reason: "trimmed" });
    const job = t.client.getJob("job-5")!;
    expect(job.lastId).toBe(server.snapshot("job-5").last_id);
    expect(job.percent).toBe(90);
    expect(job.zones.z0?.status).toBe("completed");
    expect(job.zones.z1?.status).toBe("completed");
    // 4. Events after the snapshot's last_id continue.
    const next = server.publish("job-5", { type: "processing_completed" });
    await waitFor(() => t.client.getJob("job-5")?.status === "completed", "completed");
    expect(t.events.at(-1)?.id).toBe(next.id);
  });

  it("takes the snapshot when the stream's epoch changed", async () => {
    server.createJob("job-6");
    const t = track(clientFor(server));
    t.client.subscribe("job-6");
    await waitFor(() => t.snapshots.length === 1, "subscribed");
    server.publish("job-6", progress(50));
    await waitFor(() => t.events.length === 1, "event");
    const oldEpoch = t.client.getJob("job-6")!.epoch;
    server.killAll();
    await waitFor(() => t.retries.length > 0 && t.client.state === "reconnecting", "reconnecting");
    // The stream is lost and recreated: its ids start over under a new epoch.
    server.recreate("job-6");
    server.publish("job-6", progress(5));
    await waitFor(() => t.snapshots.length === 2, "second snapshot");
    expect(t.snapshots[1]).toMatchObject({ recovered: false, reason: "epoch_changed" });
    const job = t.client.getJob("job-6")!;
    expect(job.epoch).not.toBe(oldEpoch);
    expect(job.percent).toBe(5);
    // Live events of the new epoch are applied even though their ids are "older".
    server.publish("job-6", progress(6));
    await waitFor(() => t.client.getJob("job-6")?.percent === 6, "new-epoch event");
  });

  it("asks for a fresh snapshot when a live event comes from a new epoch", async () => {
    // 1. Watch a job with two declared zones.
    server.createJob("job-6b");
    const t = track(clientFor(server));
    t.client.subscribe("job-6b");
    await waitFor(() => t.snapshots.length === 1, "subscribed");
    server.publish("job-6b", { type: "zones_declared", zones: [makeZoneInfo({ zone_id: "old", index: 0 })] });
    await waitFor(() => t.client.getJob("job-6b")?.zones.old, "old zone");
    // 2. The stream is recreated under our feet and a new-epoch event arrives live.
    server.recreate("job-6b");
    server.publish("job-6b", { type: "zones_declared", zones: [makeZoneInfo({ zone_id: "new", index: 0 })] });
    // 3. The client resubscribes without a position and takes the new epoch's snapshot.
    await waitFor(() => t.snapshots.length === 2, "second snapshot");
    const job = t.client.getJob("job-6b")!;
    expect(job.epoch).toBe(server.snapshot("job-6b").epoch);
    expect(Object.keys(job.zones)).toEqual(["new"]);
    expect(server.framesOf("subscribe").at(-1)).not.toHaveProperty("last_id");
    // 4. Later events apply normally.
    server.publish("job-6b", progress(12));
    await waitFor(() => t.client.getJob("job-6b")?.percent === 12, "after resync");
  });

  it("sends throttled acks of the last applied id", async () => {
    server.createJob("job-7");
    const t = track(clientFor(server, { ackInterval: 100 }));
    t.client.subscribe("job-7");
    await waitFor(() => t.snapshots.length === 1, "subscribed");
    const published = Array.from({ length: 10 }, (_, i) => server.publish("job-7", progress(i)));
    await waitFor(() => t.events.length === 10, "10 events");
    await waitFor(() => server.framesOf("ack").at(-1)?.id === published[9]!.id, "final ack");
    expect(server.framesOf("ack").length).toBeLessThanOrEqual(2);
    expect(server.framesOf("ack").at(-1)).toEqual({ op: "ack", job_id: "job-7", id: published[9]!.id });
  });

  it("sends a subscribe made when the state turns open once", async () => {
    // 1. A listener subscribes as soon as the connection is open (a view mounting on "open").
    server.createJob("job-open");
    const t = track(clientFor(server));
    t.client.on("state", ({ next }) => {
      if (next === "open" && t.client.stats.connections === 1) t.client.subscribe("job-open");
    });
    t.client.connect();
    // 2. Its snapshot arrives; the server saw one subscribe, not one from the listener plus one
    //    from the resubscribe-on-hello.
    await waitFor(() => t.snapshots.length === 1, "snapshot");
    const live = server.publish("job-open", progress(1));
    await waitFor(() => t.events.length === 1, "live event");
    expect(t.events[0]?.id).toBe(live.id);
    expect(server.framesOf("subscribe")).toHaveLength(1);
  });

  it("reports a refused subscription and does not retry it", async () => {
    server.createJob("job-8", "bob");
    const t = track(clientFor(server));
    t.client.subscribe("job-8");
    await waitFor(() => t.errors.length === 1, "error");
    const error = t.errors[0] as ServerError;
    expect(error).toBeInstanceOf(ServerError);
    expect(error.name).toBe("ServerError");
    expect(error.code).toBe("forbidden");
    expect(error.jobId).toBe("job-8");
    expect(t.client.getJobError("job-8")).toBe(error);
    server.killAll();
    await waitFor(() => t.client.state === "open" && t.client.stats.connections === 2, "reconnected");
    await sleep(30);
    expect(server.framesOf("subscribe")).toHaveLength(1);
  });

  it("watches a user room and resumes each of its jobs from its own position", async () => {
    // 1. alice owns two jobs, bob one.
    server.createJob("a-1", "alice");
    server.createJob("a-2", "alice");
    server.createJob("b-1", "bob");
    server.publish("a-1", progress(10));
    const t = track(clientFor(server));
    const rooms: string[][] = [];
    t.client.on("room", (r) => rooms.push(r.jobs.map((j) => j.jobId)));
    // 2. The room reply lists alice's jobs (snapshots).
    t.client.subscribeRoom("user:alice");
    await waitFor(() => t.client.getRoomJobs("user:alice").length === 2, "2 jobs");
    expect(t.client.getJob("a-1")?.percent).toBe(10);
    expect(t.client.getJob("b-1")).toBeUndefined();
    // 3. Live events of a job created later join the room.
    server.createJob("a-3", "alice");
    server.publish("a-3", { type: "processing_queued", task_name: "pdf" });
    server.publish("a-1", progress(20));
    await waitFor(() => t.client.getRoomJobs("user:alice").length === 3, "3 jobs");
    // 4. Drop; events happen while away; on resume each job replays from its position.
    server.killAll();
    await waitFor(() => t.retries.length > 0 && t.client.state === "reconnecting", "reconnecting");
    const missedA1 = server.publish("a-1", progress(30));
    const missedA3 = server.publish("a-3", progress(40));
    await waitFor(() => t.client.getJob("a-3")?.percent === 40 && t.client.getJob("a-1")?.percent === 30, "resumed");
    const resub = server.framesOf("subscribe").at(-1) as { positions: Record<string, { last_id: string }> };
    expect(Object.keys(resub.positions).sort()).toEqual(["a-1", "a-2", "a-3"]);
    const ids = t.events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.slice(-2).sort()).toEqual([missedA1.id, missedA3.id].sort());
    expect(rooms.length).toBeGreaterThan(0);
  });
});

describe("connection health", () => {
  it("reconnects when no frame arrives within the heartbeat timeout", async () => {
    await server.stop();
    await startServer({ heartbeatS: 0.04, pingIntervalMs: 20 });
    const t = track(clientFor(server, { heartbeatFactor: 2.5 }));
    t.client.connect();
    await waitFor(() => t.client.state === "open", "open");
    // Pings keep the connection alive well past the timeout (100 ms).
    await sleep(250);
    expect(t.client.state).toBe("open");
    // 1. The server goes silent (a half-open TCP connection looks like this).
    server.silent = true;
    const silentAt = Date.now();
    await waitFor(() => t.retries.length > 0 && t.client.state === "reconnecting", "reconnecting");
    const detectedAfter = Date.now() - silentAt;
    expect(detectedAfter).toBeGreaterThanOrEqual(60);
    expect(detectedAfter).toBeLessThan(1_000);
    expect(t.retries[0]?.closeCode).toBe(CloseCode.HEARTBEAT_TIMEOUT);
    // 2. The server speaks again; the client is back.
    server.silent = false;
    await waitFor(() => t.client.state === "open", "open again");
    expect(t.client.stats.connections).toBe(2);
  });

  it("gives up on a connection whose hello does not come within connectTimeout", async () => {
    server.silent = true;
    const t = track(clientFor(server, { connectTimeout: 100 }));
    t.client.connect();
    await waitFor(() => t.retries.length === 1, "retry");
    expect(t.retries[0]?.closeCode).toBe(CloseCode.HEARTBEAT_TIMEOUT);
    expect(t.states).toEqual(["connecting", "reconnecting"]);
    server.silent = false;
    await waitFor(() => t.client.state === "open", "open");
  });

  it("retries with backoff when the token provider fails", async () => {
    let calls = 0;
    const t = track(
      clientFor(server, {
        token: async () => {
          calls += 1;
          if (calls === 1) throw new Error("token endpoint down");
          return "any";
        },
      }),
    );
    t.client.connect();
    await waitFor(() => t.client.state === "open", "open");
    expect(t.errors.map((e) => [e.name, e.message])).toEqual([["ProgressClientError", "token provider failed"]]);
    expect(t.retries).toHaveLength(1);
  });

  it("answers ping with pong", async () => {
    await server.stop();
    await startServer({ pingIntervalMs: 20 });
    const t = track(clientFor(server));
    t.client.connect();
    await waitFor(() => server.framesOf("pong").length >= 2, "pongs");
  });

  it("goes reconnecting at once when offline, and reconnects at once when online", async () => {
    const network = new EventTarget();
    let online = true;
    const t = track(
      clientFor(server, {
        network: { target: network, isOnline: () => online },
        minReconnectDelay: 5_000,
        maxReconnectDelay: 5_000,
      }),
    );
    t.client.connect();
    await waitFor(() => t.client.state === "open", "open");
    // 1. The browser goes offline: no waiting for a timeout.
    online = false;
    network.dispatchEvent(new Event("offline"));
    expect(t.client.state).toBe("reconnecting");
    await waitFor(() => server.openConnections === 0, "socket closed");
    // 2. No attempt while offline.
    await sleep(100);
    expect(server.connectionsAccepted).toBe(1);
    // 3. Online again: reconnect now, not after the (5 s) backoff.
    online = true;
    const onlineAt = Date.now();
    network.dispatchEvent(new Event("online"));
    await waitFor(() => t.client.state === "open", "open again");
    expect(Date.now() - onlineAt).toBeLessThan(1_000);
  });

  it("waits for online before retrying a drop that happens while offline", async () => {
    const network = new EventTarget();
    let online = true;
    const t = track(clientFor(server, { network: { target: network, isOnline: () => online } }));
    t.client.connect();
    await waitFor(() => t.client.state === "open", "open");
    online = false;
    server.killAll();
    await waitFor(() => t.retries.length === 1, "retry");
    expect(t.retries[0]?.delayMs).toBeNull();
    await sleep(100);
    expect(server.connectionsAccepted).toBe(1);
    online = true;
    network.dispatchEvent(new Event("online"));
    await waitFor(() => t.client.state === "open", "open again");
  });
});

describe("close codes", () => {
  beforeEach(async () => {
    await server.stop();
    await startServer({ tokens: { good: "alice", "good-2": "alice", blocked: "nobody" } });
  });

  it("passes the token as a subprotocol next to progress.v1.json", async () => {
    const t = track(clientFor(server, { token: async () => "good" }));
    t.client.connect();
    await waitFor(() => t.client.state === "open", "open");
    expect(t.client.serverHello?.user).toBe("alice");
    expect(server.offers).toEqual([["progress.v1.json", "token.good"]]);
  });

  it("on 4001 asks the token provider once more, then closes with an AuthenticationError", async () => {
    let calls = 0;
    const t = track(clientFor(server, { token: () => (calls++, "expired") }));
    t.client.connect();
    await waitFor(() => t.client.state === "closed", "closed");
    expect(calls).toBe(2);
    expect(server.connectionsAccepted).toBe(2);
    expect(t.client.lastError).toBeInstanceOf(AuthenticationError);
    expect(t.client.lastError?.name).toBe("AuthenticationError");
    expect(t.client.lastError?.closeCode).toBe(CloseCode.UNAUTHENTICATED);
    expect(t.errors).toEqual([t.client.lastError]);
    await sleep(100);
    expect(server.connectionsAccepted).toBe(2); // No blind retries.
  });

  it("on 4001 connects with the fresh token when the provider has one", async () => {
    const tokens = ["expired", "good-2"];
    const t = track(clientFor(server, { token: () => tokens.shift() ?? "good" }));
    t.client.connect();
    await waitFor(() => t.client.state === "open", "open");
    expect(t.retries).toHaveLength(0);
    expect(t.errors).toHaveLength(0);
  });

  it("with a fixed token, 4001 closes at once", async () => {
    const t = track(clientFor(server, { token: "wrong" }));
    t.client.connect();
    await waitFor(() => t.client.state === "closed", "closed");
    expect(server.connectionsAccepted).toBe(1);
    expect(t.client.lastError).toBeInstanceOf(AuthenticationError);
  });

  it("on 4003 stops", async () => {
    const t = track(clientFor(server, { token: "blocked" }));
    t.client.connect();
    await waitFor(() => t.client.state === "closed", "closed");
    expect(t.client.lastError).toBeInstanceOf(ConnectionForbiddenError);
    await sleep(100);
    expect(server.connectionsAccepted).toBe(1);
  });

  it("on 1000 stops without an error", async () => {
    const t = track(clientFor(server, { token: "good" }));
    t.client.connect();
    await waitFor(() => t.client.state === "open", "open");
    server.closeAll(CloseCode.NORMAL);
    await waitFor(() => t.client.state === "closed", "closed");
    expect(t.client.lastError).toBeNull();
    expect(t.errors).toHaveLength(0);
  });

  it.each([CloseCode.INTERNAL, CloseCode.RESTART, CloseCode.HEARTBEAT_TIMEOUT, CloseCode.SLOW_CONSUMER, CloseCode.TOO_MANY_CONNECTIONS, CloseCode.RATE_LIMITED])(
    "on %i reconnects with backoff",
    async (code) => {
      const t = track(clientFor(server, { token: "good" }));
      t.client.connect();
      await waitFor(() => t.client.state === "open", "open");
      server.closeAll(code);
      await waitFor(() => t.retries.length === 1, "retry");
      expect(t.retries[0]?.closeCode).toBe(code);
      await waitFor(() => t.client.state === "open", "open again", TIMEOUT);
    },
  );
});
