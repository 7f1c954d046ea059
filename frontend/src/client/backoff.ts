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
