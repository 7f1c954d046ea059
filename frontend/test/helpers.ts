/** Shared test helpers: one TIMEOUT (scaled by PROGRESS_TEST_TIMEOUT_SCALE in CI), waiting. */
import { EventSource } from "eventsource";
import { WebSocket } from "ws";
import {
  ProgressClient,
  type EventSourceConstructor,
  type ProgressClientOptions,
  type WebSocketConstructor,
} from "../src/client/index";
import type { ProtocolServer } from "./protocolServer";

/** Upper bound for anything a test waits for, in ms. */
export const TIMEOUT = 5_000 * Number(process.env.PROGRESS_TEST_TIMEOUT_SCALE ?? "1");

/** `ws`'s WebSocket, typed as the client expects (its event types are richer than ours). */
export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

/**
 * The `eventsource` package's EventSource (Node 20 has none), typed as the client expects. It
 * follows the WHATWG spec like a browser's: a refused request (any status but 200) closes it
 * for good (`readyState` 2), a broken stream makes it retry by itself (`readyState` 0).
 */
export const NodeEventSource = EventSource as unknown as EventSourceConstructor;

/** Poll until `check` returns a truthy value (or throws nothing), or fail after TIMEOUT. */
export async function waitFor<T>(check: () => T, what = "condition", timeout = TIMEOUT): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const value = check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`, { cause: lastError });
    }
    await sleep(5);
  }
}

/** Resolve after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A client for the test server with fast, deterministic-enough timings. */
export function clientFor(
  server: ProtocolServer,
  options: Partial<ProgressClientOptions> = {},
): ProgressClient {
  return new ProgressClient({
    url: server.url,
    WebSocket: NodeWebSocket,
    network: null,
    // A first retry after ~49 ms: long enough for a test to act "while away", short enough to
    // keep the suite fast.
    minReconnectDelay: 50,
    maxReconnectDelay: 400,
    random: () => 0.999,
    minUptime: 100_000,
    ackInterval: 20,
    ...options,
  });
}
