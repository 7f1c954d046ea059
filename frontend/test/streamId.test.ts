/** Stream ids: plain values. */
import { describe, expect, it } from "vitest";
import { compareStreamIds, parseStreamId } from "../src/client/index";
import { isAfter } from "../src/client/streamId";

describe("stream ids", () => {
  it("compare as (ms, seq) integer pairs, not as strings", () => {
    expect(compareStreamIds("9-0", "10-0")).toBeLessThan(0);
    expect(compareStreamIds("5-10", "5-9")).toBeGreaterThan(0);
    expect(compareStreamIds("1718000000000-3", "1718000000000-3")).toBe(0);
    expect(parseStreamId("nope")).toBeNull();
    expect(() => compareStreamIds("x", "1-0")).toThrow(RangeError);
  });

  it("isAfter orders as pairs, and counts an id that does not parse as after (so it is not dropped)", () => {
    expect(isAfter("10-0", "9-0")).toBe(true);
    expect(isAfter("5-10", "5-9")).toBe(true);
    expect(isAfter("5-9", "5-9")).toBe(false);
    expect(isAfter("5-8", "5-9")).toBe(false);
    expect(isAfter("garbage", "5-9")).toBe(true);
    expect(isAfter("5-9", "99999999999999999-0")).toBe(true); // Beyond 2^53: not comparable.
  });
});
