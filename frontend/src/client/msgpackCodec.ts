/**
 * `progress.v1.msgpack`: binary frames holding the same maps as the JSON ones
 * (docs/protocol.md, "Wire format"). Loaded by `loadCodec("msgpack")` only.
 */
import { decode, encode } from "@msgpack/msgpack";
import { MSGPACK_SUBPROTOCOL } from "./frames.js";
import { checkServerFrame, type WireCodec } from "./wire.js";

/** The bytes of a binary message, whichever way the socket hands them over. */
function bytesOf(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

/** The msgpack codec; the socket must deliver binary data as `ArrayBuffer` or a byte view. */
export const msgpackCodec: WireCodec = {
  format: "msgpack",
  subprotocol: MSGPACK_SUBPROTOCOL,
  // Optional fields left `undefined` are left out, as JSON.stringify does (not sent as nil).
  encode: (frame) => encode(frame, { ignoreUndefined: true }),
  decode(data) {
    if (typeof data === "string") return "text frame on a msgpack connection";
    const bytes = bytesOf(data);
    if (!bytes) return "binary frame of an unreadable kind (set binaryType to arraybuffer)";
    let value: unknown;
    try {
      value = decode(bytes);
    } catch {
      return "frame is not msgpack";
    }
    return checkServerFrame(value, "msgpack map");
  },
};
