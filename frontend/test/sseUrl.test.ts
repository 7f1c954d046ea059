/** Where SSE streams are asked for, and the options that choose a transport: plain values. */
import { describe, expect, it } from "vitest";
import { ProgressClient, ProgressClientError, SSE_JOBS_PER_STREAM, sseUrlFor } from "../src/client/index";
import { encodePositions, isJobId, streamUrl } from "../src/client/sseUrl";
import { NodeEventSource, NodeWebSocket } from "./helpers";

describe("SSE URLs", () => {
  it("are the WebSocket URL's, with http(s) and the last path segment made sse", () => {
    expect(sseUrlFor("ws://127.0.0.1:8000/ws")).toBe("http://127.0.0.1:8000/sse");
    expect(sseUrlFor("wss://example.com/ws?token=x#y")).toBe("https://example.com/sse");
    expect(sseUrlFor("wss://example.com/progress/ws")).toBe("https://example.com/progress/sse");
    expect(sseUrlFor("ws://example.com/")).toBe("http://example.com/sse");
  });

  it("name the jobs or the room, the token, and the positions as the bridge's own SSE id", () => {
    const positions = { "job-1": { epoch: "ep-1", last_id: "17-0" }, "job-2": { epoch: "ep-2", last_id: "18-3" } };
    const url = new URL(streamUrl("http://h/sse", { jobIds: ["job-1", "job-2", "job-3"] }, positions, "t.k.n"));
    expect(url.searchParams.getAll("job_id")).toEqual(["job-1", "job-2", "job-3"]);
    expect(url.searchParams.get("presence")).toBe("true");
    expect(url.searchParams.get("token")).toBe("t.k.n");
    const id = url.searchParams.get("last_event_id")!;
    expect(id).toBe(encodePositions(positions));
    expect(id).toMatch(/^m:[A-Za-z0-9_-]+$/); // base64url, unpadded, as progress_bridge/bridge/sse.py writes it
    expect(JSON.parse(Buffer.from(id.slice(2), "base64url").toString("utf8"))).toEqual({ "job-1": "ep-1:17-0", "job-2": "ep-2:18-3" });
    const room = new URL(streamUrl("http://h/sse", { room: "user:alice" }, {}, null));
    expect([...room.searchParams]).toEqual([["room", "user:alice"]]);
  });

  it("check job ids with the bridge's own pattern, and hold a bounded number of jobs", () => {
    expect(isJobId("pdf-2026.01:x_1")).toBe(true);
    expect(isJobId("bad id")).toBe(false);
    expect(isJobId("-leading")).toBe(false);
    expect(SSE_JOBS_PER_STREAM).toBeLessThanOrEqual(100); // the bridge's MAX_ROOM_POSITIONS
  });
});

describe("transport options", () => {
  const base = { url: "ws://127.0.0.1:1/ws", network: null };

  it("are checked", () => {
    expect(() => new ProgressClient({ ...base, WebSocket: NodeWebSocket, sseFallbackAfter: 0 })).toThrow(RangeError);
    expect(() => new ProgressClient({ ...base, WebSocket: NodeWebSocket, sseFallbackAfter: 1.5 })).toThrow(RangeError);
    expect(() => new ProgressClient({ ...base, WebSocket: NodeWebSocket, wsProbeInterval: -1 })).toThrow(RangeError);
    expect(() => new ProgressClient({ ...base, WebSocket: NodeWebSocket, wsProbeInterval: 0 })).toThrow(RangeError);
    expect(() => new ProgressClient({ ...base, WebSocket: NodeWebSocket, transport: "smoke" as "sse" })).toThrow(RangeError);
    // SSE only needs an EventSource, and no WebSocket.
    expect(() => new ProgressClient({ ...base, transport: "sse", EventSource: null })).toThrow(ProgressClientError);
    expect(new ProgressClient({ ...base, transport: "sse", EventSource: NodeEventSource }).transport).toBe("sse");
    expect(new ProgressClient({ ...base, WebSocket: NodeWebSocket }).transport).toBe("websocket");
  });
});
