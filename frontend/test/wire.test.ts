/** Frame parsing and encoding (src/client/wire.ts): plain strings in, typed frames out. */
import { describe, expect, it } from "vitest";
import { encodeClientFrame, parseServerFrame } from "../src/client/wire";

const HELLO = { op: "hello", protocol: 1, user: "alice", heartbeat_s: 15, max_frame_bytes: 65_536 };

describe("parseServerFrame", () => {
  it("returns every documented server frame as it came", () => {
    const frames = [
      HELLO,
      { op: "ping" },
      { op: "subscribed", ref: "r1", job_id: "j", recovered: true, reason: "ok", epoch: "e", snapshot: null },
      { op: "event", event: { type: "processing_progress", job_id: "j", percent: 5 } },
      { op: "batch", events: [] },
      { op: "unsubscribed", ref: "r2", job_id: "j" },
      { op: "error", ref: null, code: "forbidden", message: "not yours" },
    ];
    for (const frame of frames) expect(parseServerFrame(JSON.stringify(frame))).toEqual(frame);
  });

  it("says what is wrong with a frame that is not JSON, not an object, or of an unknown op", () => {
    expect(parseServerFrame("{nope")).toBe("frame is not JSON");
    expect(parseServerFrame("[1]")).toBe("frame is not a JSON object");
    expect(parseServerFrame("null")).toBe("frame is not a JSON object");
    expect(parseServerFrame('{"op":"welcome"}')).toBe('unknown op "welcome"');
    expect(parseServerFrame('{"op":"toString"}')).toBe('unknown op "toString"');
    expect(parseServerFrame('{"ev":"ping"}')).toBe("unknown op undefined");
  });

  it("rejects a frame missing a field the client acts on, or holding it with the wrong kind", () => {
    expect(parseServerFrame('{"op":"event","event":null}')).toBe("event frame without object field event");
    expect(parseServerFrame('{"op":"event","event":[]}')).toBe("event frame without object field event");
    expect(parseServerFrame('{"op":"batch","events":{}}')).toBe("batch frame without array field events");
    expect(parseServerFrame('{"op":"subscribed","job_id":"j"}')).toBe(
      "subscribed frame without boolean field recovered",
    );
    expect(parseServerFrame(JSON.stringify({ ...HELLO, heartbeat_s: "15" }))).toBe(
      "hello frame without number field heartbeat_s",
    );
    expect(parseServerFrame('{"op":"error","message":"x"}')).toBe("error frame without string field code");
  });
});

describe("encodeClientFrame", () => {
  it("writes one JSON object per frame, with optional fields left out", () => {
    expect(JSON.parse(encodeClientFrame({ op: "subscribe", job_id: "j", ref: "r1" }))).toEqual({
      op: "subscribe",
      job_id: "j",
      ref: "r1",
    });
    expect(encodeClientFrame({ op: "pong" })).toBe('{"op":"pong"}');
  });
});
