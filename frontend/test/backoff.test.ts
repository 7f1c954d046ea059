/** Reconnect delays: full-jitter backoff and the attempt count, with plain values (no timers). */
import { describe, expect, it } from "vitest";
import { RetrySchedule } from "../src/client/backoff";
import { backoffCeiling, backoffDelay } from "../src/client/index";

describe("backoff", () => {
  const opts = { minReconnectDelay: 500, maxReconnectDelay: 20_000 };

  it("draws full jitter within [0, min(cap, base * 2^n))", () => {
    for (let n = 0; n < 12; n++) {
      const ceiling = Math.min(20_000, 500 * 2 ** n);
      expect(backoffCeiling(n, opts)).toBe(ceiling);
      expect(backoffDelay(n, opts, () => 0)).toBe(0);
      expect(backoffDelay(n, opts, () => 0.999_999)).toBeLessThan(ceiling);
      expect(backoffDelay(n, opts, () => 0.999_999)).toBeGreaterThanOrEqual(ceiling - 1);
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(n, opts);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(ceiling);
      }
    }
    expect(backoffCeiling(1_000, opts)).toBe(20_000); // 2^1000 overflows; the cap holds.
  });
});

describe("RetrySchedule", () => {
  const schedule = () =>
    new RetrySchedule({ minReconnectDelay: 100, maxReconnectDelay: 1_000, minUptime: 5_000 }, () => 0.999);

  it("numbers attempts from 1 and doubles the ceiling each time, up to the cap", () => {
    const s = schedule();
    const planned = Array.from({ length: 6 }, (_, i) => s.next(i));
    expect(planned).toEqual([
      { attempt: 1, delayMs: 99 },
      { attempt: 2, delayMs: 199 },
      { attempt: 3, delayMs: 399 },
      { attempt: 4, delayMs: 799 },
      { attempt: 5, delayMs: 999 },
      { attempt: 6, delayMs: 999 },
    ]);
  });

  it("starts over after a connection that stayed open minUptime, not after a shorter one", () => {
    // 1. Two failed attempts.
    const s = schedule();
    s.next(0);
    s.next(0);
    // 2. A connection that lasts 4,999 ms: the count goes on.
    s.opened(1_000);
    expect(s.next(5_999)).toEqual({ attempt: 3, delayMs: 399 });
    // 3. One that lasts 5,000 ms: the next attempt is the first again.
    s.opened(10_000);
    expect(s.next(15_000)).toEqual({ attempt: 1, delayMs: 99 });
    // 4. The uptime is used once: an immediate second close counts on.
    expect(s.next(15_001)).toEqual({ attempt: 2, delayMs: 199 });
  });

  it("forgets the uptime of an interrupted connection, and reset() starts over", () => {
    const s = schedule();
    s.next(0);
    s.opened(0);
    s.interrupted(); // Offline: this connection's uptime no longer counts.
    expect(s.next(60_000).attempt).toBe(2);
    s.reset();
    expect(s.next(60_000).attempt).toBe(1);
  });
});
