/** The options of `new ProgressClient(...)`, their defaults, and the checks they pass. */
import type { ConnectionOptions, TransportMode } from "./connection.js";
import { ProgressClientError } from "./errors.js";
import { browserNetwork, type NetworkMonitor } from "./network.js";
import type { TokenSource } from "./reconnectingTransport.js";
import type { FetchLike } from "./sseRefusal.js";
import type { EventSourceConstructor } from "./sseTransport.js";
import { sseUrlFor } from "./sseUrl.js";
import type { WebSocketConstructor } from "./transport.js";
import type { WireFormat } from "./wire.js";

/** Wire formats a client may ask for. */
const FORMATS: readonly WireFormat[] = ["json", "msgpack"];
/** Transport modes. */
const MODES: readonly TransportMode[] = ["auto", "websocket", "sse"];

/** Defaults of the tunable options; times in ms. */
export const DEFAULT_OPTIONS = {
  /** Base of the exponential backoff: ceiling of the first retry's delay, in ms. */
  minReconnectDelay: 500,
  /** Cap of the backoff delay, in ms. */
  maxReconnectDelay: 20_000,
  /** The connection must stay open this long (ms) before the retry counter resets. */
  minUptime: 5_000,
  /** Time allowed from opening the socket to the server's `hello`, in ms. */
  connectTimeout: 10_000,
  /**
   * No frame for `heartbeatFactor × hello.heartbeat_s` counts as a dead connection
   * (the server pings every `heartbeat_s`). Unitless multiplier.
   */
  heartbeatFactor: 2.5,
  /** At most one `ack` per job per this many ms. */
  ackInterval: 1_000,
  /**
   * With `transport: "auto"`, this many WebSocket attempts in a row failing at the handshake
   * (closed before open, or no `hello` within `connectTimeout`) switch the client to SSE. Three
   * rides out a single refused attempt (a bridge restarting), and with the default backoff falls
   * back within about 2 s of a proxy that refuses the upgrade. A whole number ≥ 1.
   */
  sseFallbackAfter: 3,
  /** While on SSE, try a WebSocket again this often, in ms (and each time an SSE connection opens); > 0. */
  wsProbeInterval: 30_000,
} as const;

/** The numeric options, by name. */
type Tunables = { -readonly [K in keyof typeof DEFAULT_OPTIONS]: number };

/** Options of `new ProgressClient(...)`. */
export interface ProgressClientOptions extends Partial<Tunables> {
  /** WebSocket URL of the bridge, e.g. `wss://example.com/ws`. */
  url: string | URL;
  /**
   * `"auto"` (the default): a WebSocket, falling back to Server-Sent Events while WebSocket
   * handshakes fail (`sseFallbackAfter`) and back when a WebSocket gets through again
   * (`wsProbeInterval`); `"websocket"`: never SSE; `"sse"`: SSE only. Without an EventSource
   * implementation, `"auto"` is WebSocket only.
   */
  transport?: TransportMode;
  /**
   * The bridge's SSE endpoint; by default `url` with `ws:`/`wss:` made `http:`/`https:` and its
   * last path segment replaced by `sse` (`wss://example.com/ws` → `https://example.com/sse`).
   */
  sseUrl?: string | URL;
  /** EventSource implementation; `globalThis.EventSource` by default (Node 20 has none). */
  EventSource?: EventSourceConstructor | null;
  /**
   * `fetch`, used to learn why the bridge refused an SSE stream (EventSource does not show the
   * HTTP status); `globalThis.fetch` by default, `null` to treat every refusal as an outage.
   */
  fetch?: FetchLike | null;
  /**
   * Wire format: `"json"` (text frames; the default) or `"msgpack"` (binary frames, smaller and
   * cheaper to parse for busy jobs; `@msgpack/msgpack` is loaded on the first connection).
   */
  format?: WireFormat;
  /** The JWT, or a (possibly async) function called before every connection attempt. */
  token?: TokenSource;
  /** WebSocket implementation; `globalThis.WebSocket` by default. */
  WebSocket?: WebSocketConstructor;
  /** Heartbeat timeout in ms; overrides `heartbeatFactor × hello.heartbeat_s`. */
  heartbeatTimeout?: number;
  /** Offline/online source; the browser's `window`/`navigator` by default, `null` to disable. */
  network?: NetworkMonitor | null;
  /** Random source for the jitter, `[0, 1)`; `Math.random` by default. */
  random?: () => number;
}

/** Options with defaults applied: the connection's, and the client's own. */
export interface ResolvedOptions {
  /** Everything the connection (and its transports) need. */
  connection: ConnectionOptions;
  /** At most one `ack` per job per this many ms. */
  ackInterval: number;
}

/**
 * Apply the defaults and check the options.
 *
 * @throws RangeError when a numeric option is negative or not finite (`sseFallbackAfter` not a
 *   whole number ≥ 1, `wsProbeInterval` 0), or the format or transport unknown.
 * @throws ProgressClientError when there is no WebSocket implementation (no EventSource one for
 *   `transport: "sse"`).
 */
export function resolveOptions(options: ProgressClientOptions): ResolvedOptions {
  const tunables: Tunables = { ...DEFAULT_OPTIONS };
  for (const key of Object.keys(DEFAULT_OPTIONS) as (keyof Tunables)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`option ${key} must be a finite number >= 0, got ${value}`);
    }
    tunables[key] = value;
  }
  if (!Number.isInteger(tunables.sseFallbackAfter) || tunables.sseFallbackAfter < 1) {
    throw new RangeError(`option sseFallbackAfter must be a whole number >= 1, got ${tunables.sseFallbackAfter}`);
  }
  if (tunables.wsProbeInterval <= 0) {
    throw new RangeError(`option wsProbeInterval must be > 0, got ${tunables.wsProbeInterval}`);
  }
  const format = options.format ?? "json";
  if (!FORMATS.includes(format)) throw new RangeError(`option format must be "json" or "msgpack", got ${JSON.stringify(format)}`);
  const mode = options.transport ?? "auto";
  if (!MODES.includes(mode)) {
    throw new RangeError(`option transport must be "auto", "websocket" or "sse", got ${JSON.stringify(mode)}`);
  }
  const g = globalThis as { WebSocket?: WebSocketConstructor; EventSource?: EventSourceConstructor; fetch?: FetchLike };
  const WebSocket = options.WebSocket ?? g.WebSocket ?? null;
  if (!WebSocket && mode !== "sse") throw new ProgressClientError("no WebSocket implementation: pass options.WebSocket");
  const EventSource = options.EventSource === undefined ? (g.EventSource ?? null) : options.EventSource;
  if (!EventSource && mode === "sse") throw new ProgressClientError("no EventSource implementation: pass options.EventSource");
  const { ackInterval, sseFallbackAfter, wsProbeInterval, ...timings } = tunables;
  const url = String(options.url);
  const token = options.token ?? null;
  const network = options.network === undefined ? browserNetwork() : options.network;
  const random = options.random ?? Math.random;
  const fetch = options.fetch === undefined ? (g.fetch?.bind(globalThis) ?? null) : options.fetch;
  return {
    ackInterval,
    connection: {
      mode,
      sseFallbackAfter,
      wsProbeInterval,
      websocket:
        WebSocket && mode !== "sse"
          ? { ...timings, url, format, token, WebSocket, network, random, heartbeatTimeout: options.heartbeatTimeout }
          : null,
      sse:
        EventSource && mode !== "websocket"
          ? {
              url: options.sseUrl === undefined ? sseUrlFor(url) : String(options.sseUrl),
              token,
              EventSource,
              fetch,
              network,
              random,
              minReconnectDelay: timings.minReconnectDelay,
              maxReconnectDelay: timings.maxReconnectDelay,
              minUptime: timings.minUptime,
              connectTimeout: timings.connectTimeout,
            }
          : null,
    },
  };
}
