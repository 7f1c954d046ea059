/** Frame parsing and encoding (src/client/wire.ts, msgpackCodec.ts): data in, typed frames out. */
import { decode, encode } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import { encodeClientFrame, loadCodec, parseServerFrame } from "../src/client/wire";

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

describe("msgpackCodec", () => {
  it("round-trips frames as binary maps, leaving undefined fields out", async () => {
    const { msgpackCodec } = await import("../src/client/msgpackCodec");
    const bytes = msgpackCodec.encode({ op: "subscribe", job_id: "j", epoch: undefined, ref: "r1" });
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(decode(bytes as Uint8Array)).toEqual({ op: "subscribe", job_id: "j", ref: "r1" });
    // The socket may hand over an ArrayBuffer (browsers, binaryType "arraybuffer") or a view.
    const packed = encode(HELLO);
    expect(msgpackCodec.decode(packed)).toEqual(HELLO);
    expect(msgpackCodec.decode(packed.slice().buffer)).toEqual(HELLO);
    expect(msgpackCodec.decode(Buffer.from(packed))).toEqual(HELLO);
  });

  it("says what is wrong with a text frame, garbage, a non-map or a frame missing a field", async () => {
    const { msgpackCodec } = await import("../src/client/msgpackCodec");
    expect(msgpackCodec.decode(JSON.stringify(HELLO))).toBe("text frame on a msgpack connection");
    expect(msgpackCodec.decode(new Uint8Array([0xc1]))).toBe("frame is not msgpack");
    expect(msgpackCodec.decode(encode([1, 2]))).toBe("frame is not a msgpack map");
    expect(msgpackCodec.decode(encode({ op: "error", message: "x" }))).toBe("error frame without string field code");
    expect(msgpackCodec.decode(new Blob([]))).toMatch(/^binary frame of an unreadable kind/);
  });

  it("is what loadCodec gives for msgpack; JSON refuses binary frames", async () => {
    const { msgpackCodec } = await import("../src/client/msgpackCodec");
    expect(await loadCodec("msgpack")).toBe(msgpackCodec);
    expect((await loadCodec("json")).decode(encode(HELLO))).toBe("binary frame on a JSON connection");
    await expect(loadCodec("xml" as "json")).rejects.toThrow(RangeError);
  });
});
