/**
 * ProgressClient over Server-Sent Events, and its fallback from WebSocket to SSE and back,
 * against the in-process protocol server (test/protocolServer.ts) serving `/ws` and `/sse` on one
 * loopback port. Real sockets and real HTTP: the `eventsource` package's EventSource and Node's
 * fetch. `blockUpgrade` makes the server answer WebSocket handshakes with HTTP 403, as a proxy
 * that refuses the upgrade does.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  AuthenticationError,
  CloseCode,
  ConnectionForbiddenError,
  ErrorCode,
  ServerError,
  type ProgressClient,
  type ProgressClientError,
  type ProgressClientOptions,
  type RetryInfo,
  type SnapshotInfo,
  type TransportChange,
} from "../src/client/index";
import type { ProgressEvent } from "../src/generated/events";
import { makeZoneInfo } from "./factories";
import { clientFor, NodeEventSource, waitFor } from "./helpers";
import { ProtocolServer } from "./protocolServer";

let server: ProtocolServer;
const clients: ProgressClient[] = [];

interface Tracked {
  client: ProgressClient;
  events: ProgressEvent[];
  states: string[];
  snapshots: SnapshotInfo[];
  errors: ProgressClientError[];
  retries: RetryInfo[];
  switches: TransportChange[];
}

/** A client on `server` with an EventSource, recording what it emits. */
function sseClient(options: Partial<ProgressClientOptions> = {}): Tracked {
  const client = clientFor(server, { EventSource: NodeEventSource, ...options });
  clients.push(client);
  const t: Tracked = { client, events: [], states: [], snapshots: [], errors: [], retries: [], switches: [] };
  client.on("event", (e) => t.events.push(e));
  client.on("state", (s) => t.states.push(`${s.next}/${s.transport}`));
  client.on("snapshot", (s) => t.snapshots.push(s));
  client.on("error", (e) => t.errors.push(e));
  client.on("retry", (r) => t.retries.push(r));
  client.on("transport", (c) => t.switches.push(c));
  return t;
}

function progress(percent: number): { type: "processing_progress"; percent: number } {
  return { type: "processing_progress", percent };
}

function ids(events: readonly { id?: string | null }[]): (string | null | undefined)[] {
  return events.map((e) => e.id);
}

/** The positions an SSE request resumed from (its `last_event_id`), decoded. */
function resumedFrom(url: URL): Record<string, string> {
  const last = url.searchParams.get("last_event_id");
  if (!last) return {};
  expect(last.startsWith("m:")).toBe(true);
  return JSON.parse(Buffer.from(last.slice(2), "base64url").toString("utf8")) as Record<string, string>;
}

beforeEach(async () => {
  server = await ProtocolServer.start();
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await server.stop();
});

describe('transport: "sse"', () => {
  it("subscribes with the snapshot, then follows live events, with the same states as a WebSocket", async () => {
    server.createJob("job-1");
    server.publish("job-1", { type: "processing_queued", task_name: "pdf.process" });
    const t = sseClient({ transport: "sse" });
    t.client.subscribe("job-1");
    await waitFor(() => t.snapshots.length === 1, "snapshot");
    expect(t.client.transport).toBe("sse");
    expect(t.snapshots[0]).toMatchObject({ jobId: "job-1", recovered: true, reason: "ok" });
    expect(t.client.getJob("job-1")?.status).toBe("queued");
    await waitFor(() => t.client.state === "open", "open");
    expect(t.states).toEqual(["connecting/sse", "open/sse"]);
    expect(t.client.serverHello).toBeNull(); // SSE has no hello
    const live = [30, 60].map((p) => server.publish("job-1", progress(p)));
    await waitFor(() => t.events.length === 2, "live events");
    expect(ids(t.events)).toEqual(ids(live));
    expect(t.client.getJob("job-1")?.percent).toBe(60);
    // One stream, for the job, with the token the client was given (none here) and no position.
    expect(server.sseRequests).toHaveLength(1);
    expect(server.sseRequests[0]!.searchParams.getAll("job_id")).toEqual(["job-1"]);
    expect(resumedFrom(server.sseRequests[0]!)).toEqual({});
    expect(server.framesOf("subscribe")).toEqual([]); // nothing went over a WebSocket
  });

  it("reopens the job stream for a new job, resuming the others: nothing lost, nothing repeated", async () => {
    server.createJob("job-a");
    server.createJob("job-b");
    server.repeatOnReplay = 2; // each resume re-sends two entries the client already has
    const t = sseClient({ transport: "sse" });
    const stopA = t.client.subscribe("job-a");
    await waitFor(() => t.client.state === "open" && t.snapshots.length === 1, "job-a subscribed");
    const a1 = [1, 2, 3].map((p) => server.publish("job-a", progress(p)));
    await waitFor(() => t.events.length === 3, "job-a events");
    // A second job: one stream for both, job-a resumed from its last event.
    const stopB = t.client.subscribe("job-b");
    await waitFor(() => t.snapshots.length === 2 && server.openSseStreams === 1, "job-b subscribed");
    const reopened = server.sseRequests.at(-1)!;
    expect(reopened.searchParams.getAll("job_id").sort()).toEqual(["job-a", "job-b"]);
    expect(resumedFrom(reopened)).toEqual({ "job-a": `${a1[2]!.epoch}:${a1[2]!.id}` });
    const both = [server.publish("job-a", progress(4)), server.publish("job-b", progress(50))];
    await waitFor(() => t.events.length === 5, "events of both");
    expect(ids(t.events)).toEqual(ids([...a1, ...both]));
    expect(t.client.stats.duplicatesDropped).toBe(2);
    expect(t.client.state).toBe("open"); // reopening a stream is no reconnect
    // Unsubscribing job-b reopens the stream with job-a alone, from its last event.
    stopB();
    await waitFor(() => server.sseRequests.length === 3 && server.openSseStreams === 1, "reopened for job-a");
    expect(server.sseRequests[2]!.searchParams.getAll("job_id")).toEqual(["job-a"]);
    expect(resumedFrom(server.sseRequests[2]!)).toEqual({ "job-a": `${both[0]!.epoch}:${both[0]!.id}` });
    const a5 = server.publish("job-a", progress(5));
    await waitFor(() => t.events.length === 6, "job-a alone");
    expect(t.events.at(-1)!.id).toBe(a5.id);
    // The last unsubscribe closes it; nothing is opened instead.
    stopA();
    await waitFor(() => server.openSseStreams === 0, "closed");
    expect(server.sseRequests).toHaveLength(3);
    expect(t.client.state).toBe("open");
  });

  it("keeps one stream per room beside the job stream, and follows the room's jobs", async () => {
    server.createJob("job-r1");
    server.publish("job-r1", { type: "processing_queued", task_name: "pdf.process" });
    server.createJob("job-x");
    const t = sseClient({ transport: "sse" });
    t.client.subscribeRoom("user:alice");
    t.client.subscribe("job-x");
    await waitFor(() => t.client.getRoomJobs("user:alice").length === 2, "room jobs");
    await waitFor(() => server.openSseStreams === 2 && t.client.state === "open", "two streams");
    const urls = server.sseRequests.map((u) => u.searchParams.get("room") ?? u.searchParams.getAll("job_id").join(","));
    expect(urls.sort()).toEqual(["job-x", "user:alice"]);
    server.createJob("job-r2");
    const live = server.publish("job-r2", { type: "processing_queued", task_name: "pdf.process" });
    await waitFor(() => t.client.getRoomJobs("user:alice").length === 3, "a new job in the room");
    expect(t.events.at(-1)?.id).toBe(live.id);
  });

  it("resumes every stream after the bridge ends them (a close frame) or they break", async () => {
    server.createJob("job-2");
    const t = sseClient({ transport: "sse" });
    t.client.subscribe("job-2");
    await waitFor(() => t.client.state === "open" && t.snapshots.length === 1, "subscribed");
    const before = [10, 20].map((p) => server.publish("job-2", progress(p)));
    await waitFor(() => t.events.length === 2, "2 events");
    // 1. The bridge ends the stream: slow consumer (4008), reconnect with backoff.
    server.closeAll(CloseCode.SLOW_CONSUMER, "slow consumer");
    await waitFor(() => t.retries.length === 1, "a retry");
    expect(t.retries[0]!.closeCode).toBe(CloseCode.SLOW_CONSUMER);
    const missed = server.publish("job-2", progress(30));
    await waitFor(() => t.events.length === 3, "the missed event");
    expect(resumedFrom(server.sseRequests.at(-1)!)).toEqual({ "job-2": `${before[1]!.epoch}:${before[1]!.id}` });
    // 2. The stream breaks (no close frame): same.
    await waitFor(() => t.client.state === "open", "open again");
    server.killAll();
    await waitFor(() => t.retries.length === 2, "a second retry");
    expect(t.retries[1]!.closeCode).toBe(CloseCode.ABNORMAL);
    const after = server.publish("job-2", progress(40));
    await waitFor(() => t.events.length === 4, "the event after");
    expect(ids(t.events)).toEqual(ids([...before, missed, after]));
    expect(t.snapshots).toHaveLength(1);
    expect(t.client.stats.connections).toBe(3);
    expect(t.states).toEqual(["connecting/sse", "open/sse", "reconnecting/sse", "open/sse", "reconnecting/sse", "open/sse"]);
  });

  it("takes the snapshot when the position cannot be honoured (recovered: false)", async () => {
    server.createJob("job-5");
    const t = sseClient({ transport: "sse" });
    t.client.subscribe("job-5");
    await waitFor(() => t.snapshots.length === 1, "subscribed");
    server.publish("job-5", { type: "zones_declared", zones: [makeZoneInfo({ zone_id: "z1", index: 0 })], zones_total: 1 });
    await waitFor(() => t.events.length === 1, "1 event");
    server.killAll();
    await waitFor(() => t.client.state === "reconnecting", "reconnecting");
    for (let i = 0; i < 5; i++) server.publish("job-5", progress(i * 10));
    server.trim("job-5", 2);
    await waitFor(() => t.snapshots.length === 2, "second snapshot");
    expect(t.snapshots[1]).toMatchObject({ jobId: "job-5", recovered: false, reason: "trimmed" });
    expect(t.client.getJob("job-5")?.percent).toBe(40);
  });

  it("reports refused subscribes as a WebSocket does: one-job streams by HTTP status, others by frame", async () => {
    server.createJob("bobs", "bob");
    server.createJob("mine");
    // 1. Alone in their streams, each refusal is an HTTP status, learnt by asking with fetch.
    const alone = sseClient({ transport: "sse" });
    alone.client.subscribe("nope");
    await waitFor(() => alone.client.getJobError("nope"), "not_found");
    expect(alone.client.getJobError("nope")).toBeInstanceOf(ServerError);
    expect((alone.client.getJobError("nope") as ServerError).code).toBe(ErrorCode.NOT_FOUND);
    await waitFor(() => alone.client.state === "open", "open without the refused job");
    alone.client.subscribe("bobs");
    await waitFor(() => alone.client.getJobError("bobs"), "forbidden");
    expect((alone.client.getJobError("bobs") as ServerError).code).toBe(ErrorCode.FORBIDDEN);
    expect(alone.client.state).toBe("open");
    // 2. Together with a job of ours, each comes as an error frame; ours goes on.
    const together = sseClient({ transport: "sse" });
    together.client.subscribe("mine");
    together.client.subscribe("bobs");
    together.client.subscribe("nope");
    await waitFor(() => together.client.getJobError("bobs") && together.client.getJobError("nope"), "both refused");
    expect((together.client.getJobError("bobs") as ServerError).code).toBe(ErrorCode.FORBIDDEN);
    expect((together.client.getJobError("nope") as ServerError).code).toBe(ErrorCode.NOT_FOUND);
    const live = server.publish("mine", progress(5));
    await waitFor(() => together.client.getJob("mine")?.lastId === live.id, "live event of ours");
    // 3. A job id the bridge would refuse (the whole stream, with 400) is refused alone.
    together.client.subscribe("bad id!");
    await waitFor(() => together.client.getJobError("bad id!"), "bad_frame");
    expect((together.client.getJobError("bad id!") as ServerError).code).toBe(ErrorCode.BAD_FRAME);
  });

  it("asks the token provider again after a 401, and stops after a second one", async () => {
    await server.stop();
    server = await ProtocolServer.start({ tokens: { "tok-new": "alice" } });
    server.createJob("job-t");
    const tokens = ["tok-old", "tok-new"];
    const t = sseClient({ transport: "sse", token: () => tokens.shift() ?? "tok-none" });
    t.client.subscribe("job-t");
    await waitFor(() => t.snapshots.length === 1, "subscribed with the fresh token");
    // The EventSource refused, the same request again by fetch to read the 401, then a fresh token.
    expect(server.sseRequests.map((u) => u.searchParams.get("token"))).toEqual(["tok-old", "tok-old", "tok-new"]);
    // A fixed token that is refused is final.
    const fixed = sseClient({ transport: "sse", token: "tok-bad" });
    fixed.client.subscribe("job-t");
    await waitFor(() => fixed.client.state === "closed", "closed");
    expect(fixed.client.lastError).toBeInstanceOf(AuthenticationError);
    expect(fixed.client.lastError?.closeCode).toBe(CloseCode.UNAUTHENTICATED);
    // A cross-site origin (403 forbidden_origin) stops, like close 4003.
    await server.stop();
    server = await ProtocolServer.start({ tokens: { "tok-nobody": "nobody" } });
    server.createJob("job-t");
    const foreign = sseClient({ transport: "sse", token: "tok-nobody" });
    foreign.client.subscribe("job-t");
    await waitFor(() => foreign.client.state === "closed", "closed");
    expect(foreign.client.lastError).toBeInstanceOf(ConnectionForbiddenError);
  });

  it("closes its streams at once when offline, and resumes at once when online", async () => {
    server.createJob("job-n");
    const network = new EventTarget();
    let online = true;
    const t = sseClient({
      transport: "sse",
      network: { target: network, isOnline: () => online },
      minReconnectDelay: 5_000,
      maxReconnectDelay: 5_000,
    });
    t.client.subscribe("job-n");
    await waitFor(() => t.client.state === "open" && t.snapshots.length === 1, "open");
    const before = server.publish("job-n", progress(1));
    await waitFor(() => t.events.length === 1, "an event");
    online = false;
    network.dispatchEvent(new Event("offline"));
    expect(t.client.state).toBe("reconnecting");
    await waitFor(() => server.openSseStreams === 0, "stream closed");
    const missed = server.publish("job-n", progress(2));
    online = true;
    const onlineAt = Date.now();
    network.dispatchEvent(new Event("online"));
    await waitFor(() => t.client.state === "open" && t.events.length === 2, "open again, caught up");
    expect(Date.now() - onlineAt).toBeLessThan(1_000); // not after the 5 s backoff
    expect(ids(t.events)).toEqual(ids([before, missed]));
  });

  it("retries with backoff while the bridge answers 503", async () => {
    server.createJob("job-u");
    server.refuseSse = 503;
    const t = sseClient({ transport: "sse" });
    t.client.subscribe("job-u");
    await waitFor(() => t.retries.length >= 2, "two retries");
    expect(t.retries.every((r) => r.closeCode === CloseCode.INTERNAL)).toBe(true);
    expect(t.client.getJobError("job-u")).toBeNull();
    server.refuseSse = null;
    await waitFor(() => t.snapshots.length === 1 && t.client.state === "open", "subscribed");
  });
});

describe('transport: "auto"', () => {
  it("falls back to SSE after 3 refused WebSocket handshakes, and back when a probe gets through", async () => {
    // 1. A proxy refuses every WebSocket handshake from the start.
    server.blockUpgrade = true;
    server.createJob("job-f");
    const t = sseClient({ wsProbeInterval: 100 });
    t.client.subscribe("job-f");
    await waitFor(() => t.client.state === "open", "open on SSE");
    expect(server.upgradesBlocked).toBeGreaterThanOrEqual(3);
    expect(t.switches[0]).toEqual({ prev: "websocket", next: "sse", reason: "3 WebSocket handshakes failed" });
    expect(t.client.transport).toBe("sse");
    expect(t.states).toEqual(["connecting/websocket", "reconnecting/websocket", "open/sse"]);
    const onSse = [10, 20].map((p) => server.publish("job-f", progress(p)));
    await waitFor(() => t.events.length === 2, "events over SSE");
    // 2. Probes keep failing while the proxy refuses; the client stays on SSE, open.
    const blocked = server.upgradesBlocked;
    await waitFor(() => server.upgradesBlocked >= blocked + 2, "two more probes");
    expect(t.client.state).toBe("open");
    // 3. WebSockets get through again: the next probe moves the client back, without a blip.
    server.blockUpgrade = false;
    await waitFor(() => t.client.transport === "websocket", "back on a WebSocket");
    expect(t.switches[1]).toMatchObject({ prev: "sse", next: "websocket" });
    await waitFor(() => server.openSseStreams === 0, "SSE stream closed");
    const onWs = [30, 40].map((p) => server.publish("job-f", progress(p)));
    await waitFor(() => t.events.length === 4, "events over the WebSocket");
    // The WebSocket resumed the job from the last event SSE delivered: nothing lost or repeated.
    expect(server.framesOf("subscribe").at(-1)).toMatchObject({ job_id: "job-f", last_id: onSse[1]!.id });
    expect(ids(t.events)).toEqual(ids([...onSse, ...onWs]));
    expect(t.snapshots).toHaveLength(1);
    expect(t.client.stats.duplicatesDropped).toBe(0);
    expect(t.states.slice(3)).toEqual([]); // open all along after SSE opened
    expect(t.client.serverHello?.user).toBe("alice");
  });

  it("counts only handshake failures in a row: a WebSocket that opens in between starts over", async () => {
    const t = sseClient({ wsProbeInterval: 60_000 });
    const blockedAtSwitch: number[] = [];
    t.client.on("transport", () => blockedAtSwitch.push(server.upgradesBlocked));
    t.client.connect();
    await waitFor(() => t.client.state === "open", "open");
    // Two refused handshakes, then one gets through.
    server.blockUpgrade = true;
    server.killAll();
    await waitFor(() => server.upgradesBlocked === 2, "two refused");
    server.blockUpgrade = false;
    await waitFor(() => t.client.state === "open", "open again");
    // Two more: still a WebSocket client. The third in a row falls back.
    server.blockUpgrade = true;
    server.killAll();
    await waitFor(() => server.upgradesBlocked === 4, "two more refused");
    expect(t.client.transport).toBe("websocket");
    await waitFor(() => t.client.transport === "sse", "on SSE after the third");
    expect(blockedAtSwitch).toEqual([5]);
  });

  it("goes WebSocket → SSE → WebSocket with events at every step, each once and in order", async () => {
    server.createJob("job-g");
    server.repeatOnReplay = 1;
    const t = sseClient({ wsProbeInterval: 60_000 }); // no timed probe: only the one when SSE opens
    t.client.subscribe("job-g");
    await waitFor(() => t.client.state === "open" && t.snapshots.length === 1, "open on a WebSocket");
    const first = [1, 2].map((p) => server.publish("job-g", progress(p)));
    await waitFor(() => t.events.length === 2, "events over the WebSocket");
    // The WebSocket drops and every handshake is refused: SSE, resuming from the last event.
    server.blockUpgrade = true;
    server.killAll();
    const away = server.publish("job-g", progress(3));
    await waitFor(() => t.client.transport === "sse" && t.client.state === "open", "open on SSE");
    expect(resumedFrom(server.sseRequests.at(-1)!)).toEqual({ "job-g": `${first[1]!.epoch}:${first[1]!.id}` });
    await waitFor(() => t.events.length === 3, "missed event over SSE");
    const onSse = server.publish("job-g", progress(4));
    await waitFor(() => t.events.length === 4, "live over SSE");
    // The SSE stream breaks while WebSockets pass again: its reopening probes and moves back.
    server.blockUpgrade = false;
    server.killAll();
    const away2 = server.publish("job-g", progress(5));
    await waitFor(() => t.client.transport === "websocket" && t.client.state === "open", "back on a WebSocket");
    await waitFor(() => t.events.length === 5, "missed event");
    const last = server.publish("job-g", progress(6));
    await waitFor(() => t.events.length === 6, "live over the WebSocket");
    expect(ids(t.events)).toEqual(ids([...first, away, onSse, away2, last]));
    expect(t.snapshots).toHaveLength(1);
    expect(t.client.getJob("job-g")?.percent).toBe(6);
  });

  it("returns to the WebSocket as soon as SSE opens when the whole bridge was away", async () => {
    server.createJob("job-o");
    const t = sseClient({ wsProbeInterval: 60_000 });
    t.client.subscribe("job-o");
    await waitFor(() => t.client.state === "open" && t.snapshots.length === 1, "open");
    // An outage: neither WebSockets nor SSE get through; the client falls back and keeps trying.
    server.blockUpgrade = true;
    server.refuseSse = 503;
    server.killAll();
    await waitFor(() => t.client.transport === "sse" && t.retries.some((r) => r.closeCode === CloseCode.INTERNAL), "on SSE, retrying");
    expect(t.client.state).toBe("reconnecting");
    // Back: SSE opens first, and its probe finds the WebSocket working at once.
    const during = server.publish("job-o", progress(7));
    server.refuseSse = null;
    server.blockUpgrade = false;
    await waitFor(() => t.client.transport === "websocket", "WebSocket again");
    await waitFor(() => t.events.length === 1, "the missed event");
    expect(t.events[0]!.id).toBe(during.id);
    expect(t.switches.map((s) => s.next)).toEqual(["sse", "websocket"]);
  });

  it('never uses SSE with transport: "websocket", nor without an EventSource', async () => {
    server.blockUpgrade = true;
    const forced = sseClient({ transport: "websocket" });
    const without = sseClient({ EventSource: null });
    forced.client.connect();
    without.client.connect();
    await waitFor(() => forced.retries.length >= 4 && without.retries.length >= 4, "retries");
    expect([forced.client.transport, without.client.transport]).toEqual(["websocket", "websocket"]);
    expect(server.sseRequests).toEqual([]);
    expect(forced.client.state).toBe("reconnecting");
  });
});
