/** Options that shape the reconnect delay. */
export interface BackoffOptions {
  /** Base delay in ms: the ceiling of the first retry's delay. */
  minReconnectDelay: number;
  /** Cap in ms: no delay is ever longer. */
  maxReconnectDelay: number;
}

/**
 * Delay before reconnect attempt `attempt` (0-based), in ms: exponential backoff with full
 * jitter, uniformly drawn from `[0, min(cap, base * 2^attempt))`.
 * Full jitter spreads a crowd of clients that lost the same server:
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 *
 * @param random a source of numbers in `[0, 1)`, `Math.random` by default.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const ceiling = backoffCeiling(attempt, options);
  return Math.floor(random() * ceiling);
}

/** Upper bound of `backoffDelay(attempt)`: `min(cap, base * 2^attempt)` in ms. */
export function backoffCeiling(attempt: number, options: BackoffOptions): number {
  // 2^attempt overflows to Infinity for large attempts; min() keeps the cap.
  return Math.min(options.maxReconnectDelay, options.minReconnectDelay * 2 ** Math.max(0, attempt));
}

/** Options of `RetrySchedule`. */
export interface RetryScheduleOptions extends BackoffOptions {
  /** A connection that stayed open this long (ms) resets the attempt count. */
  minUptime: number;
}

/** One reconnect attempt, as `RetrySchedule.next` plans it. */
export interface RetryAttempt {
  /** 1-based number of the attempt since the last stable connection. */
  attempt: number;
  /** Delay before it, in ms. */
  delayMs: number;
}

/**
 * Counts reconnect attempts and draws each one's delay. The count grows with every close and
 * starts over once a connection has stayed open `minUptime`: a server that accepts and drops at
 * once is not hammered, while a rare drop after a long stable stretch retries quickly. Times are
 * passed in (ms), so it runs without timers.
 */
export class RetrySchedule {
  private attempts = 0;
  private openedAt: number | null = null;

  constructor(
    private readonly options: RetryScheduleOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /** Start over: a fresh `connect()`. */
  reset(): void {
    this.attempts = 0;
    this.openedAt = null;
  }

  /** The current connection reached `hello` at `nowMs`. */
  opened(nowMs: number): void {
    this.openedAt = nowMs;
  }

  /** The current connection ended without a retry being planned (offline, a new socket): its uptime no longer counts. */
  interrupted(): void {
    this.openedAt = null;
  }

  /** The connection ended at `nowMs`; plan the next attempt. */
  next(nowMs: number): RetryAttempt {
    if (this.openedAt !== null && nowMs - this.openedAt >= this.options.minUptime) this.attempts = 0;
    this.openedAt = null;
    const attempt = this.attempts++;
    return { attempt: attempt + 1, delayMs: backoffDelay(attempt, this.options, this.random) };
  }
}
