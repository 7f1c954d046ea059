/** The options of `new ProgressClient(...)`, their defaults, and the checks they pass. */
import { ProgressClientError } from "./errors.js";
import { browserNetwork, type NetworkMonitor } from "./network.js";
import type { TokenSource, TransportOptions, WebSocketConstructor } from "./transport.js";
import type { WireFormat } from "./wire.js";

/** Wire formats a client may ask for. */
const FORMATS: readonly WireFormat[] = ["json", "msgpack"];

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
} as const;

/** The numeric options, by name. */
type Tunables = { -readonly [K in keyof typeof DEFAULT_OPTIONS]: number };

/** Options of `new ProgressClient(...)`. */
export interface ProgressClientOptions extends Partial<Tunables> {
  /** WebSocket URL of the bridge, e.g. `wss://example.com/ws`. */
  url: string | URL;
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

/** Options with defaults applied: the transport's, and the client's own. */
export interface ResolvedOptions {
  /** Everything the transport needs. */
  transport: TransportOptions;
  /** At most one `ack` per job per this many ms. */
  ackInterval: number;
}

/**
 * Apply the defaults and check the options.
 *
 * @throws RangeError when a numeric option is negative or not finite, or the format unknown.
 * @throws ProgressClientError when there is no WebSocket implementation.
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
  const format = options.format ?? "json";
  if (!FORMATS.includes(format)) throw new RangeError(`option format must be "json" or "msgpack", got ${JSON.stringify(format)}`);
  const WebSocket =
    options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? null;
  if (!WebSocket) throw new ProgressClientError("no WebSocket implementation: pass options.WebSocket");
  const { ackInterval, ...timings } = tunables;
  return {
    ackInterval,
    transport: {
      ...timings,
      url: String(options.url),
      format,
      token: options.token ?? null,
      WebSocket,
      network: options.network === undefined ? browserNetwork() : options.network,
      random: options.random ?? Math.random,
      heartbeatTimeout: options.heartbeatTimeout,
    },
  };
}
