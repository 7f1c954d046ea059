/**
 * The client against the real Python bridge (`progress-bridge serve --bare`), which
 * `scripts/test` starts for this file with an embedded valkey-server:
 *
 *   PROGRESS_BRIDGE_WS_URL=ws://127.0.0.1:PORT/ws   the bridge's WebSocket endpoint
 *   PROGRESS_BRIDGE_TOKEN=<JWT for user alice>      `progress-bridge token --user alice`
 *   PROGRESS_REDIS_URL=redis://…                    the bridge's store (events are appended there)
 *
 * Skipped when they are not set (`npm test` alone); `PROGRESS_REAL_BRIDGE=required` (set by
 * scripts/test) makes their absence a failure instead. Events are appended through the Python
 * store, so what the client sees went through the real append script, feed and bridge. Every
 * scenario runs in both wire formats (JSON text frames, msgpack binary frames).
 */
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  AuthenticationError,
  CloseCode,
  ErrorCode,
  ProgressClient,
  ServerError,
  type ProgressClientOptions,
  type RetryInfo,
  type SnapshotInfo,
  type TransportChange,
  type WireFormat,
} from "../src/client/index";
import type { ProgressEvent } from "../src/generated/events";
import { NodeEventSource, NodeWebSocket, waitFor } from "./helpers";
import { PythonStore, type EventInput } from "./realBridge/pythonStore";
import { TcpProxy } from "./realBridge/tcpProxy";

const url = process.env.PROGRESS_BRIDGE_WS_URL;
const token = process.env.PROGRESS_BRIDGE_TOKEN;
const redisUrl = process.env.PROGRESS_REDIS_URL;
const enabled = !!(url && token && redisUrl);

it.runIf(process.env.PROGRESS_REAL_BRIDGE === "required")("has a real bridge to run against", () => {
  expect({ PROGRESS_BRIDGE_WS_URL: url, PROGRESS_BRIDGE_TOKEN: token, PROGRESS_REDIS_URL: redisUrl }).toEqual({
    PROGRESS_BRIDGE_WS_URL: expect.any(String),
    PROGRESS_BRIDGE_TOKEN: expect.any(String),
    PROGRESS_REDIS_URL: expect.any(String),
  });
});

let store: PythonStore;
let jobCounter = 0;
const clients: ProgressClient[] = [];

/** A job id no other test (nor an earlier run against the same store) uses. */
function newJobId(): string {
  return `ts-${process.pid}-${Date.now()}-${++jobCounter}`;
}

function clientFor(format: WireFormat, options: Partial<ProgressClientOptions> = {}): ProgressClient {
  const client = new ProgressClient({
    url: url!,
    token: token!,
    format,
    WebSocket: NodeWebSocket,
    EventSource: NodeEventSource,
    network: null,
    minReconnectDelay: 50,
    maxReconnectDelay: 200,
    ...options,
  });
  clients.push(client);
  return client;
}

/** Events of one job, built from `type` and fields. */
/** A token for alice that expires in `ttl` seconds, signed with the bridge's secret. */
function shortToken(ttl: number): string {
  const cli = resolve(import.meta.dirname, "../../.venv/bin/progress-bridge");
  return execFileSync(cli, ["token", "--user", "alice", "--ttl", String(ttl)], { encoding: "utf8" }).trim();
}

/** The same URL on another port (the proxy's). */
function viaPort(address: string, port: number): string {
  const proxied = new URL(address);
  proxied.port = String(port);
  return proxied.toString();
}

function eventsOf(jobId: string, owner = "alice") {
  return (type: string, fields: Record<string, unknown> = {}): EventInput => ({ type, job_id: jobId, owner, ...fields });
}

/** A zone's two events. */
function zone(ev: ReturnType<typeof eventsOf>, i: number): EventInput[] {
  const z = { zone_id: `z${i}`, zone_index: i, processing_tool: "pdfplumber" };
  return [ev("zone_processing", z), ev("zone_completed", { ...z, confidence: 0.9 })];
}

describe.runIf(enabled)("against the real bridge", () => {
  beforeAll(() => {
    store = new PythonStore(redisUrl!);
  });
  afterAll(() => store?.close());
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  describe.each(["json", "msgpack"] as const)("in %s", (format) => {

    it("connects, subscribes with the job's snapshot, then follows live events", async () => {
      // 1. A job that has started and declared its zones.
      const jobId = newJobId();
      const ev = eventsOf(jobId);
      const zones = [0, 1, 2].map((i) => ({ zone_id: `z${i}`, index: i, page: 1, kind: "text", bbox: null }));
      const history = await store.append(
        ev("processing_queued", { task_name: "pdf.process" }),
        ev("processing_started", { attempt: 1 }),
        ev("zones_declared", { zones, pages: [{ number: 1, width: 612, height: 792 }], zones_total: 3 }),
      );
      // 2. Connect and subscribe: hello names our user, the first answer is the snapshot.
      const client = clientFor(format);
      const snapshots: SnapshotInfo[] = [];
      const events: ProgressEvent[] = [];
      client.on("snapshot", (s) => snapshots.push(s));
      client.on("event", (e) => events.push(e));
      client.subscribe(jobId);
      await waitFor(() => client.state === "open", "open");
      expect(client.serverHello?.user).toBe("alice");
      await waitFor(() => snapshots.length === 1, "snapshot");
      expect(snapshots[0]).toMatchObject({ jobId, recovered: true, reason: "ok" });
      expect(snapshots[0]!.snapshot.last_id).toBe(history.at(-1));
      expect(client.getJob(jobId)).toMatchObject({ status: "started", zonesTotal: 3, lastId: history.at(-1) });
      expect(Object.keys(client.getJob(jobId)!.zones)).toEqual(["z0", "z1", "z2"]);
      // 3. Live: a zone and some progress arrive as events, once each, in order.
      const live = await store.append(...zone(ev, 0), ev("processing_progress", { percent: 33, zones_completed: 1, zones_total: 3 }));
      await waitFor(() => client.getJob(jobId)?.percent === 33, "live progress");
      expect(events.map((e) => e.id)).toEqual(live);
      expect(client.getJob(jobId)!.zones.z0!.status).toBe("completed");
    });

    it("resumes after a dropped connection with every missed event once, none lost or repeated", async () => {
      // 1. Connect through a proxy that can cut the connection like a network would.
      const proxy = await TcpProxy.start(Number(new URL(url!).port));
      try {
        const jobId = newJobId();
        const ev = eventsOf(jobId);
        const zones = Array.from({ length: 8 }, (_, i) => ({ zone_id: `z${i}`, index: i, page: 1, kind: "text", bbox: null }));
        await store.append(
          ev("processing_queued", { task_name: "pdf.process" }),
          ev("processing_started", { attempt: 1 }),
          ev("zones_declared", { zones, pages: [], zones_total: 8 }),
        );
        const proxied = new URL(url!);
        proxied.port = String(proxy.port);
        const client = clientFor(format, { url: proxied.toString() });
        const events: ProgressEvent[] = [];
        const snapshots: SnapshotInfo[] = [];
        client.on("event", (e) => events.push(e));
        client.on("snapshot", (s) => snapshots.push(s));
        client.subscribe(jobId);
        await waitFor(() => snapshots.length === 1, "snapshot");
        const before = await store.append(...zone(ev, 0), ...zone(ev, 1));
        await waitFor(() => events.length === before.length, "live events before the drop");

        // 2. The network drops, and stays down while the job goes on.
        proxy.blocked = true;
        proxy.dropAll();
        await waitFor(() => client.state === "reconnecting", "reconnecting");
        const missed = await store.append(...zone(ev, 2), ...zone(ev, 3), ...zone(ev, 4));

        // 3. The network is back: the client resumes from its last id; live events follow.
        proxy.blocked = false;
        await waitFor(() => client.state === "open", "open again");
        const after = await store.append(...zone(ev, 5), ...zone(ev, 6), ...zone(ev, 7), ev("processing_completed"));
        await waitFor(() => client.getJob(jobId)?.status === "completed", "completed");

        // 4. Every event after the snapshot arrived exactly once, in stream order, and the
        //    resume needed no second snapshot (the bridge honoured the position).
        expect(events.map((e) => e.id)).toEqual([...before, ...missed, ...after]);
        const history = await store.history(jobId);
        expect(events.map((e) => e.id)).toEqual(history.slice(3));
        expect(snapshots).toHaveLength(1);
        expect(client.stats.connections).toBe(2);
        expect(Object.values(client.getJob(jobId)!.zones).every((z) => z.status === "completed")).toBe(true);
      } finally {
        await proxy.close();
      }
    });

    it("reports the bridge's error codes: forbidden and not_found for a job, 4001 for a bad token", async () => {
      // 1. A job of another user, and a job that does not exist.
      const bobs = newJobId();
      await store.append(eventsOf(bobs, "bob")("processing_queued", { task_name: "pdf.process" }));
      const missing = newJobId();
      const client = clientFor(format);
      client.subscribe(bobs);
      client.subscribe(missing);
      await waitFor(() => client.getJobError(bobs) && client.getJobError(missing), "both refusals");
      const forbidden = client.getJobError(bobs) as ServerError;
      const notFound = client.getJobError(missing) as ServerError;
      expect([forbidden, notFound].every((e) => e instanceof ServerError)).toBe(true);
      expect([forbidden.code, notFound.code]).toEqual([ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND]);
      expect(client.getJob(bobs)?.status ?? "nothing").not.toBe("queued"); // nothing of bob's job leaked
      expect(client.state).toBe("open"); // errors leave the connection open

      // 2. A token the bridge cannot verify: it closes 4001, and a fixed token is final.
      const refused = clientFor(format, { token: "not-a-jwt" });
      refused.connect();
      await waitFor(() => refused.state === "closed", "closed");
      expect(refused.lastError).toBeInstanceOf(AuthenticationError);
      expect(refused.lastError?.closeCode).toBe(CloseCode.UNAUTHENTICATED);
    });

    it("lists the user's jobs in the user room, then follows them live", async () => {
      const jobId = newJobId();
      const ev = eventsOf(jobId);
      await store.append(ev("processing_queued", { task_name: "pdf.process" }));
      const client = clientFor(format);
      client.subscribeRoom("user:alice");
      await waitFor(() => client.getRoomJobs("user:alice").some((j) => j.jobId === jobId), "job listed");
      await store.append(ev("processing_progress", { percent: 33 }));
      await waitFor(() => client.getJob(jobId)?.percent === 33, "room live event");
    });

    it("ends with every zone of a job watched by id and through its user room, the room joined mid-job", async () => {
      // The page's case: the job by id, then the user's room while the job runs. The room's answer
      // lists the job with a snapshot that may be ahead of what the job's subscription delivered
      // so far; the bridge then sends only what follows that snapshot, so a client that kept its
      // own older state would lose the zones in between (stuck on "processing").
      const jobId = newJobId();
      const ev = eventsOf(jobId);
      const n = 60;
      const zones = Array.from({ length: n }, (_, i) => ({ zone_id: `z${i}`, index: i, page: 1, kind: "text", bbox: null }));
      await store.append(
        ev("processing_queued", { task_name: "pdf.process" }),
        ev("processing_started", { attempt: 1 }),
        ev("zones_declared", { zones, pages: [], zones_total: n }),
      );
      const client = clientFor(format);
      client.subscribe(jobId);
      await waitFor(() => client.getJob(jobId)?.status === "started", "the job's snapshot");
      // Zones arrive one append at a time; the room is joined while they do.
      const appending = (async () => {
        for (let i = 0; i < n; i++) await store.append(...zone(ev, i));
        await store.append(ev("processing_completed"));
      })();
      await waitFor(() => Object.values(client.getJob(jobId)!.zones).some((z) => z.status === "completed"), "a zone");
      client.subscribeRoom("user:alice");
      await appending;
      const history = await store.history(jobId);
      await waitFor(() => client.getJob(jobId)?.lastId === history.at(-1), "the job's last event");
      const job = client.getJob(jobId)!;
      expect(job.status).toBe("completed");
      expect(Object.values(job.zones).filter((z) => z.status !== "completed")).toEqual([]);
      expect(client.getRoomJobs("user:alice").some((j) => j.jobId === jobId)).toBe(true);
    });

    it("says who watches a job: itself first, then a second client until that one leaves", async () => {
      const jobId = newJobId();
      await store.append(eventsOf(jobId)("processing_queued", { task_name: "pdf.process" }));
      const first = clientFor(format);
      first.subscribe(jobId);
      await waitFor(() => first.getPresence(jobId)?.watching === 1, "one watching");
      expect(first.getPresence(jobId)).toEqual({ watching: 1 }); // no names: alice is no admin
      const second = clientFor(format);
      second.subscribe(jobId);
      await waitFor(() => second.getPresence(jobId)?.watching === 2, "two in the second's answer");
      await waitFor(() => first.getPresence(jobId)?.watching === 2, "two told to the first");
      second.close();
      await waitFor(() => first.getPresence(jobId)?.watching === 1, "one again");
    });
  });

  describe("over Server-Sent Events", () => {
    /** A job that has started and declared `n` zones; returns its event builder and history ids. */
    async function startedJob(n: number) {
      const jobId = newJobId();
      const ev = eventsOf(jobId);
      const zones = Array.from({ length: n }, (_, i) => ({ zone_id: `z${i}`, index: i, page: 1, kind: "text", bbox: null }));
      const history = await store.append(
        ev("processing_queued", { task_name: "pdf.process" }),
        ev("processing_started", { attempt: 1 }),
        ev("zones_declared", { zones, pages: [], zones_total: n }),
      );
      return { jobId, ev, history };
    }

    it("subscribes, follows, and resumes several jobs after the stream breaks, nothing lost or repeated", async () => {
      const proxy = await TcpProxy.start(Number(new URL(url!).port));
      try {
        const a = await startedJob(6);
        const b = await startedJob(6);
        const client = clientFor("json", { url: viaPort(url!, proxy.port), transport: "sse" });
        const events: ProgressEvent[] = [];
        const snapshots: SnapshotInfo[] = [];
        client.on("event", (e) => events.push(e));
        client.on("snapshot", (s) => snapshots.push(s));
        // 1. One job, then a second: the bridge's stream is reopened for both, the first resumed.
        client.subscribe(a.jobId);
        await waitFor(() => snapshots.length === 1 && client.state === "open", "first job");
        expect(client.transport).toBe("sse");
        expect(client.getJob(a.jobId)).toMatchObject({ status: "started", zonesTotal: 6, lastId: a.history.at(-1) });
        const a1 = await store.append(...zone(a.ev, 0));
        await waitFor(() => events.length === 2, "live events of the first job");
        client.subscribe(b.jobId);
        await waitFor(() => snapshots.length === 2, "second job");
        const live = [...(await store.append(...zone(a.ev, 1))), ...(await store.append(...zone(b.ev, 0)))];
        await waitFor(() => events.length === 6, "live events of both");
        // 2. The network drops, and stays down while both jobs go on.
        proxy.blocked = true;
        proxy.dropAll();
        await waitFor(() => client.state === "reconnecting", "reconnecting");
        const missed = [...(await store.append(...zone(a.ev, 2))), ...(await store.append(...zone(b.ev, 1)))];
        // 3. Back: both jobs resume from the client's positions; live events follow.
        proxy.blocked = false;
        await waitFor(() => client.state === "open", "open again");
        const after = [
          ...(await store.append(...zone(a.ev, 3), a.ev("processing_completed"))),
          ...(await store.append(...zone(b.ev, 2))),
        ];
        await waitFor(() => client.getJob(a.jobId)?.status === "completed" && events.length === 15, "completed");
        // 4. Per job: every event after its snapshot exactly once, in stream order.
        for (const job of [a, b]) {
          const seen = events.filter((e) => e.job_id === job.jobId).map((e) => e.id);
          expect(seen).toEqual((await store.history(job.jobId)).slice(3));
        }
        // (Ids are per job: two jobs' events may share one, so they are checked per job above.)
        expect(events).toHaveLength(a1.length + live.length + missed.length + after.length);
        expect(snapshots).toHaveLength(2);
        expect(client.serverHello).toBeNull();
      } finally {
        await proxy.close();
      }
    });

    it("reports forbidden and not_found alone (HTTP statuses) and together (frames); a bad token closes", async () => {
      const bobs = newJobId();
      await store.append(eventsOf(bobs, "bob")("processing_queued", { task_name: "pdf.process" }));
      const missing = newJobId();
      const mine = await startedJob(1);
      // Alone in a stream: the bridge answers 403/404, which the client reads with fetch.
      const alone = clientFor("json", { transport: "sse" });
      alone.subscribe(bobs);
      await waitFor(() => alone.getJobError(bobs), "forbidden");
      alone.subscribe(missing);
      await waitFor(() => alone.getJobError(missing), "not_found");
      expect([alone.getJobError(bobs), alone.getJobError(missing)].map((e) => (e as ServerError).code)).toEqual([
        ErrorCode.FORBIDDEN,
        ErrorCode.NOT_FOUND,
      ]);
      expect(alone.state).toBe("open");
      // With a job of ours in the same stream: error frames, and ours goes on.
      const together = clientFor("json", { transport: "sse" });
      together.subscribe(mine.jobId);
      together.subscribe(bobs);
      together.subscribe(missing);
      await waitFor(() => together.getJobError(bobs) && together.getJobError(missing), "both refused");
      expect([together.getJobError(bobs), together.getJobError(missing)].map((e) => (e as ServerError).code)).toEqual([
        ErrorCode.FORBIDDEN,
        ErrorCode.NOT_FOUND,
      ]);
      expect(together.getJob(bobs)?.status ?? "nothing").not.toBe("queued"); // nothing of bob's job leaked
      await store.append(mine.ev("processing_progress", { percent: 50 }));
      await waitFor(() => together.getJob(mine.jobId)?.percent === 50, "ours goes on");
      // A token the bridge cannot verify (401): a fixed token is final.
      const refused = clientFor("json", { transport: "sse", token: "not-a-jwt" });
      refused.subscribe(mine.jobId);
      await waitFor(() => refused.state === "closed", "closed");
      expect(refused.lastError).toBeInstanceOf(AuthenticationError);
      expect(refused.lastError?.closeCode).toBe(CloseCode.UNAUTHENTICATED);
    });

    it("lists the user's jobs in the user room and follows them", async () => {
      const { jobId, ev } = await startedJob(1);
      const client = clientFor("json", { transport: "sse" });
      client.subscribeRoom("user:alice");
      await waitFor(() => client.getRoomJobs("user:alice").some((j) => j.jobId === jobId), "job listed");
      await store.append(ev("processing_progress", { percent: 42 }));
      await waitFor(() => client.getJob(jobId)?.percent === 42, "room live event");
    });

    it.runIf(!!process.env.PROGRESS_TOKEN_SECRET)(
      "gets a fresh token when the bridge ends the stream with close 4001 (token expired), and resumes",
      async () => {
        const { jobId, ev } = await startedJob(4);
        const tokens = [shortToken(3), token!];
        const asked: string[] = [];
        const client = clientFor("json", {
          transport: "sse",
          token: () => {
            const next = tokens.shift() ?? token!;
            asked.push(next);
            return next;
          },
        });
        const events: ProgressEvent[] = [];
        const retries: RetryInfo[] = [];
        client.on("event", (e) => events.push(e));
        client.on("retry", (r) => retries.push(r));
        client.subscribe(jobId);
        await waitFor(() => client.state === "open" && client.getJob(jobId), "subscribed");
        const before = await store.append(...zone(ev, 0));
        // The short token expires: the bridge's last message is {"op": "close", "code": 4001}.
        await waitFor(() => asked.length === 2, "a second token", 15_000);
        expect(retries).toEqual([]); // a 4001 asks for a token at once, no backoff
        const after = await store.append(...zone(ev, 1));
        await waitFor(() => events.length === 4, "events after the new token");
        expect(events.map((e) => e.id)).toEqual([...before, ...after]);
        expect(client.state).toBe("open");
      },
    );

    it("falls back to SSE behind a proxy that refuses WebSocket upgrades, and back when it lets them through", async () => {
      const proxy = await TcpProxy.start(Number(new URL(url!).port));
      try {
        proxy.refuseUpgrades = true;
        const job = await startedJob(8);
        const client = clientFor("msgpack", { url: viaPort(url!, proxy.port), wsProbeInterval: 200 });
        const events: ProgressEvent[] = [];
        const switches: TransportChange[] = [];
        client.on("event", (e) => events.push(e));
        client.on("transport", (c) => switches.push(c));
        client.subscribe(job.jobId);
        // 1. Three refused handshakes, then SSE through the same proxy.
        await waitFor(() => client.state === "open" && client.getJob(job.jobId), "open on SSE");
        expect(client.transport).toBe("sse");
        expect(proxy.upgradesRefused).toBeGreaterThanOrEqual(3);
        expect(switches).toEqual([{ prev: "websocket", next: "sse", reason: "3 WebSocket handshakes failed" }]);
        const onSse = await store.append(...zone(job.ev, 0), ...zone(job.ev, 1));
        await waitFor(() => events.length === 4, "events over SSE");
        // 2. The proxy lets WebSockets through: a probe moves the client back.
        proxy.refuseUpgrades = false;
        await waitFor(() => client.transport === "websocket", "back on a WebSocket");
        expect(client.serverHello?.user).toBe("alice");
        const onWs = await store.append(...zone(job.ev, 2), job.ev("processing_completed"));
        await waitFor(() => client.getJob(job.jobId)?.status === "completed", "completed");
        // 3. Every event after the snapshot once, in order, across the switch; one snapshot.
        expect(events.map((e) => e.id)).toEqual([...onSse, ...onWs]);
        expect(events.map((e) => e.id)).toEqual((await store.history(job.jobId)).slice(3));
        expect(client.stats.duplicatesDropped).toBe(0);
        expect(client.state).toBe("open");
      } finally {
        await proxy.close();
      }
    });
  });
});
