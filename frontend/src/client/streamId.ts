/** A Redis stream id as an integer pair: milliseconds and sequence number. */
export type StreamIdParts = readonly [ms: number, seq: number];

const STREAM_ID = /^(\d{1,16})-(\d{1,16})$/;

/** Parse `"1718000000000-3"` into `[1718000000000, 3]`; `null` when it is not a stream id. */
export function parseStreamId(id: string): StreamIdParts | null {
  const match = STREAM_ID.exec(id);
  if (!match) return null;
  const ms = Number(match[1]);
  const seq = Number(match[2]);
  // Redis ids are 64-bit; beyond 2^53 a JS number would round and break the ordering.
  if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq)) return null;
  return [ms, seq];
}

/**
 * Compare two stream ids as `(ms, seq)` integer pairs (never as strings: "9-0" < "10-0").
 * Returns a negative number, zero or a positive number, like a sort comparator.
 *
 * @throws RangeError when either id is not a stream id.
 */
export function compareStreamIds(a: string, b: string): number {
  const pa = parseStreamId(a);
  const pb = parseStreamId(b);
  if (!pa || !pb) throw new RangeError(`not a stream id: ${JSON.stringify(pa ? b : a)}`);
  return pa[0] !== pb[0] ? pa[0] - pb[0] : pa[1] - pb[1];
}

/**
 * Whether stream id `a` comes after `b`, as `(ms, seq)` pairs. An id that does not parse counts
 * as after: an event with a malformed id is applied rather than silently dropped.
 */
export function isAfter(a: string, b: string): boolean {
  if (!parseStreamId(a) || !parseStreamId(b)) return true;
  return compareStreamIds(a, b) > 0;
}
