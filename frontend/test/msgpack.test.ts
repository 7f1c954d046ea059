/**
 * The client with `format: "msgpack"` against the in-process server: the offer, binary frames
 * both ways, snapshot, live events, batches and a resume after a drop. The same scenarios run
 * against the real bridge in realBridge.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProgressClient, type ProgressClientOptions } from "../src/client/index";
import type { ProgressEvent } from "../src/generated/events";
import { clientFor, NodeWebSocket, waitFor } from "./helpers";
import { ProtocolServer } from "./protocolServer";

let server: ProtocolServer;
let client: ProgressClient;

beforeEach(async () => {
  server = await ProtocolServer.start({ tokens: { good: "alice" } });
  client = clientFor(server, { format: "msgpack", token: "good" });
});

afterEach(async () => {
  client.close();
  await server.stop();
});

describe("the msgpack wire format", () => {
  it("offers progress.v1.msgpack, not JSON, and speaks binary frames both ways", async () => {
    // 1. A job with history; subscribe over msgpack.
    server.createJob("j");
    server.publish("j", { type: "processing_queued", task_name: "pdf.process" });
    const events: ProgressEvent[] = [];
    client.on("event", (e) => events.push(e));
    client.subscribe("j");
    await waitFor(() => client.getJob("j")?.status === "queued", "snapshot");
    // 2. The offer named msgpack only (beside the token), and the server got binary frames.
    expect(server.offers).toEqual([["progress.v1.msgpack", "token.good"]]);
    expect(server.received.map((r) => [r.format, r.frame.op])).toEqual([["progress.v1.msgpack", "subscribe"]]);
    // 3. Live events, floats and nested maps included, arrive decoded as JSON would give them.
    const live = server.publish("j", {
      type: "zones_declared",
      zones: [{ zone_id: "z0", index: 0, page: 1, kind: "table", bbox: [10.5, 20.25, 300, 400.75] }],
      pages: [{ number: 1, width: 612.5, height: 792 }],
      zones_total: 1,
    });
    await waitFor(() => events.length === 1, "live event");
    expect(events[0]).toEqual(live);
    expect(client.getJob("j")!.zones.z0!.bbox).toEqual([10.5, 20.25, 300, 400.75]);
    // 4. Acks go out as binary frames too.
    await waitFor(() => server.framesOf("ack").length === 1, "ack");
    expect(server.received.every((r) => r.format === "progress.v1.msgpack")).toBe(true);
  });

  it("resumes after a drop with only the missed events, batched or not", async () => {
    // 1. Watch a job; two events arrive live.
    server.createJob("j");
    const events: ProgressEvent[] = [];
    client.on("event", (e) => events.push(e));
    client.subscribe("j");
    await waitFor(() => client.state === "open" && client.getJob("j"), "subscribed");
    const before = [10, 20].map((percent) => server.publish("j", { type: "processing_progress", percent }));
    await waitFor(() => events.length === 2, "live events");
    // 2. Drop; three events while away; the replay comes as one batch frame.
    server.batch = true;
    server.killAll();
    await waitFor(() => client.state === "reconnecting", "reconnecting");
    const missed = [30, 40, 50].map((percent) => server.publish("j", { type: "processing_progress", percent }));
    // 3. Back: the resubscribe carries the position, every event arrives once.
    await waitFor(() => events.length === 5, "replayed events");
    expect(server.framesOf("subscribe").at(-1)).toMatchObject({ job_id: "j", last_id: before[1]!.id });
    expect(events.map((e) => e.id)).toEqual([...before, ...missed].map((e) => e.id));
    expect(client.getJob("j")?.percent).toBe(50);
  });
});

describe("the format option", () => {
  it("is json by default and refuses formats the protocol does not have", () => {
    const base: ProgressClientOptions = { url: server.url, WebSocket: NodeWebSocket, network: null };
    expect(() => new ProgressClient({ ...base, format: "xml" as "json" })).toThrow(
      'option format must be "json" or "msgpack", got "xml"',
    );
  });
});
