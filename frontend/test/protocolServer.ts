/**
 * A small in-process bridge speaking wire protocol v1 (docs/protocol.md) over a real `ws`
 * WebSocket server, for the client tests. It keeps job streams in memory and implements the
 * subset the client relies on: token subprotocol, hello, job and `user:` room subscriptions with
 * replay after `(epoch, last_id)`, `recovered: false` with a snapshot (trimmed, epoch_changed,
 * ahead), event and batch frames, ping/pong, acks, error frames and close codes.
 *
 * Test controls: `publish`, `trim`, `recreate`, `closeAll(code)`, `killAll()` (no close frame),
 * `silent` (stop sending anything), `repeatOnReplay` (re-send entries before `last_id`, as a
 * retry on the wire may), `batch` (send replays as one batch frame).
 */
import type { Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import type { JobSnapshot, ProgressEvent, ZoneState } from "../src/generated/events";
import {
  eventFrom,
  makeSnapshot,
  makeZoneState,
  type EventFields,
  type EventType,
} from "./factories";

/** Envelope fields `publish` fills in. */
type ServerFilled = "v" | "id" | "epoch" | "job_id" | "owner" | "ts";

/**
 * What `publish` takes: an event's `type` and fields, without the envelope the server fills in;
 * fields with a default in the Python model may be left out (see `makeEvent`).
 */
export type EventBody = {
  [T in EventType]: { type: T } & Omit<EventFields<T>, ServerFilled>;
}[EventType];

interface StoredJob {
  jobId: string;
  owner: string;
  epoch: string;
  /** History kept (trimming removes the oldest). */
  events: ProgressEvent[];
  /** Every event ever appended in this epoch: the snapshot hash survives trimming. */
  all: ProgressEvent[];
  /** Id of the newest entry trimmed away, if any. */
  trimmedThrough: string | null;
}

interface Conn {
  id: number;
  ws: WebSocket;
  user: string;
  jobs: Set<string>;
  rooms: Set<string>;
}

/** A frame the server received, with the connection it came on. */
export interface ReceivedFrame {
  conn: number;
  frame: Record<string, unknown>;
}

/** Options of `ProtocolServer.start`. */
export interface ProtocolServerOptions {
  /** `heartbeat_s` announced in hello. */
  heartbeatS?: number;
  /** Send a ping this often (ms); `null` for never. */
  pingIntervalMs?: number | null;
  /** Valid tokens and the user each stands for; a token of user "nobody" is closed with 4003. */
  tokens?: Record<string, string>;
  /** Serve `/ws` on this (listening) HTTP server instead of a port of its own. */
  httpServer?: HttpServer;
}

let epochCounter = 0;

function cmp(a: string, b: string): number {
  const [am, as] = a.split("-").map(Number) as [number, number];
  const [bm, bs] = b.split("-").map(Number) as [number, number];
  return am !== bm ? am - bm : as - bs;
}

export class ProtocolServer {
  readonly received: ReceivedFrame[] = [];
  /** Connections accepted so far (including refused ones). */
  connectionsAccepted = 0;
  /** When true the server sends nothing at all (no pings, no events, no replies). */
  silent = false;
  /** On a resume, first re-send this many entries at or before `last_id`. */
  repeatOnReplay = 0;
  /** Send replays as one `batch` frame. */
  batch = false;
  /** Close the next N connections with this code right after the handshake. */
  refuseNext: { code: number; count: number } | null = null;
  /** While set, close every new connection with this code right after the handshake. */
  refuseAll: number | null = null;

  private readonly jobs = new Map<string, StoredJob>();
  private readonly conns = new Set<Conn>();
  private clock = 1_700_000_000_000;
  private seq = 0;
  private pingTimer: ReturnType<typeof setInterval> | null = null;

  private constructor(
    private readonly wss: WebSocketServer,
    private readonly options: ProtocolServerOptions,
  ) {}

  /** Start on a free loopback port. */
  static async start(options: ProtocolServerOptions = {}): Promise<ProtocolServer> {
    const handleProtocols = (protocols: Set<string>) =>
      protocols.has("progress.v1.json") ? "progress.v1.json" : false;
    const wss = options.httpServer
      ? new WebSocketServer({ server: options.httpServer, path: "/ws", handleProtocols })
      : new WebSocketServer({ host: "127.0.0.1", port: 0, handleProtocols });
    if (!options.httpServer) await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    const server = new ProtocolServer(wss, options);
    wss.on("connection", (ws, req) => server.accept(ws, req.headers["sec-websocket-protocol"] ?? ""));
    if (options.pingIntervalMs) {
      server.pingTimer = setInterval(() => server.broadcast({ op: "ping" }), options.pingIntervalMs);
    }
    return server;
  }

  /** ws:// URL of the endpoint. */
  get url(): string {
    const { port } = (this.options.httpServer?.address() ?? this.wss.address()) as AddressInfo;
    return `ws://127.0.0.1:${port}/ws`;
  }

  /** Open connections. */
  get openConnections(): number {
    return this.conns.size;
  }

  /** Frames of one op the server received. */
  framesOf(op: string): Record<string, unknown>[] {
    return this.received.filter((r) => r.frame.op === op).map((r) => r.frame);
  }

  /** Create a job owned by `owner` (new epoch, empty stream). */
  createJob(jobId: string, owner = "alice"): void {
    this.jobs.set(jobId, {
      jobId,
      owner,
      epoch: `ep${++epochCounter}`,
      events: [],
      all: [],
      trimmedThrough: null,
    });
  }

  /** Append one event to a job's stream and deliver it live; returns it with id and epoch. */
  publish(jobId: string, body: EventBody): ProgressEvent {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`no job ${jobId}`);
    // Several entries per millisecond, and ms values whose string order differs from numeric.
    if (this.seq >= 2) {
      this.clock += 1;
      this.seq = 0;
    } else {
      this.seq += 1;
    }
    const event = eventFrom({
      ...body,
      id: `${this.clock}-${this.seq}`,
      epoch: job.epoch,
      job_id: jobId,
      owner: job.owner,
      ts: this.clock / 1000,
    });
    job.events.push(event);
    job.all.push(event);
    if (!this.silent) {
      for (const conn of this.conns) {
        if (conn.jobs.has(jobId) || conn.rooms.has(`user:${job.owner}`)) {
          this.send(conn, { op: "event", event });
        }
      }
    }
    return event;
  }

  /** Drop all but the newest `keep` entries of a job's stream (as MAXLEN trimming does). */
  trim(jobId: string, keep: number): void {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`no job ${jobId}`);
    const cut = job.events.length - keep;
    if (cut <= 0) return;
    job.trimmedThrough = job.events[cut - 1]?.id ?? job.trimmedThrough;
    job.events = job.events.slice(cut);
  }

  /** The stream was lost and recreated: new epoch, history gone. */
  recreate(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`no job ${jobId}`);
    job.epoch = `ep${++epochCounter}`;
    job.events = [];
    job.all = [];
    job.trimmedThrough = null;
  }

  /** Snapshots of every job `owner` owns (what `GET /api/jobs` returns). */
  jobsOf(owner: string): JobSnapshot[] {
    return [...this.jobs.values()].filter((j) => j.owner === owner).map(buildSnapshot);
  }

  /** The server's current snapshot of a job (what `GET /api/jobs/{id}` returns). */
  snapshot(jobId: string): JobSnapshot {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`no job ${jobId}`);
    return buildSnapshot(job);
  }

  /** Close every connection with a close frame carrying `code`. */
  closeAll(code: number, reason = ""): void {
    for (const conn of this.conns) conn.ws.close(code, reason);
  }

  /** Drop every connection without a close frame (the client sees 1006). */
  killAll(): void {
    for (const conn of this.conns) conn.ws.terminate();
  }

  /** Stop the server. */
  async stop(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const conn of this.conns) conn.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  // ── protocol ─────────────────────────────────────────────────────────────────────────────

  private accept(ws: WebSocket, offered: string): void {
    const id = ++this.connectionsAccepted;
    if (this.refuseAll !== null) {
      ws.close(this.refuseAll, "restarting");
      return;
    }
    if (this.refuseNext && this.refuseNext.count > 0) {
      this.refuseNext.count -= 1;
      ws.close(this.refuseNext.code, "refused");
      return;
    }
    const token = offered
      .split(",")
      .map((p) => p.trim())
      .find((p) => p.startsWith("token."))
      ?.slice("token.".length);
    let user = "alice";
    if (this.options.tokens) {
      const known = token ? this.options.tokens[token] : undefined;
      if (!known) {
        ws.close(4001, "unauthenticated");
        return;
      }
      if (known === "nobody") {
        ws.close(4003, "forbidden");
        return;
      }
      user = known;
    }
    const conn: Conn = { id, ws, user, jobs: new Set(), rooms: new Set() };
    this.conns.add(conn);
    ws.on("close", () => this.conns.delete(conn));
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(String(data)) as Record<string, unknown>;
      } catch {
        this.send(conn, { op: "error", code: "bad_json", message: "not JSON" });
        return;
      }
      this.received.push({ conn: id, frame });
      this.onFrame(conn, frame);
    });
    this.send(conn, {
      op: "hello",
      protocol: 1,
      user,
      heartbeat_s: this.options.heartbeatS ?? 15,
      max_frame_bytes: 65_536,
    });
  }

  private onFrame(conn: Conn, frame: Record<string, unknown>): void {
    const ref = typeof frame.ref === "string" ? frame.ref : null;
    switch (frame.op) {
      case "subscribe":
        if (typeof frame.job_id === "string") this.subscribeJob(conn, frame, ref);
        else if (typeof frame.room === "string") this.subscribeRoom(conn, frame, ref);
        else this.send(conn, { op: "error", ref, code: "bad_frame", message: "job_id or room" });
        return;
      case "unsubscribe":
        if (typeof frame.job_id === "string") conn.jobs.delete(frame.job_id);
        if (typeof frame.room === "string") conn.rooms.delete(frame.room);
        this.send(conn, { op: "unsubscribed", ref, job_id: frame.job_id, room: frame.room });
        return;
      case "ack":
      case "pong":
        return;
      default:
        this.send(conn, { op: "error", ref, code: "unknown_op", message: String(frame.op) });
    }
  }

  private subscribeJob(conn: Conn, frame: Record<string, unknown>, ref: string | null): void {
    const jobId = frame.job_id as string;
    const job = this.jobs.get(jobId);
    if (!job) {
      this.send(conn, { op: "error", ref, code: "not_found", message: `no job ${jobId}` });
      return;
    }
    if (job.owner !== conn.user) {
      this.send(conn, { op: "error", ref, code: "forbidden", message: `not your job` });
      return;
    }
    conn.jobs.add(jobId);
    const position =
      typeof frame.last_id === "string" && typeof frame.epoch === "string"
        ? { epoch: frame.epoch, last_id: frame.last_id }
        : null;
    const reply = this.resume(job, position);
    this.send(conn, { op: "subscribed", ref, job_id: jobId, epoch: job.epoch, ...reply.frame });
    this.sendEvents(conn, reply.events);
  }

  private subscribeRoom(conn: Conn, frame: Record<string, unknown>, ref: string | null): void {
    const room = frame.room as string;
    if (room !== `user:${conn.user}`) {
      this.send(conn, { op: "error", ref, code: "forbidden", message: `not your room` });
      return;
    }
    conn.rooms.add(room);
    const positions = (frame.positions ?? {}) as Record<string, { epoch: string; last_id: string }>;
    const mine = [...this.jobs.values()].filter((j) => j.owner === conn.user);
    this.send(conn, {
      op: "subscribed",
      ref,
      room,
      recovered: true,
      reason: "ok",
      jobs: mine.map(buildSnapshot),
    });
    for (const job of mine) {
      const position = positions[job.jobId];
      if (!position) continue;
      const reply = this.resume(job, position);
      if (reply.frame.recovered) this.sendEvents(conn, reply.events);
    }
  }

  /** The replay rules of docs/protocol.md for one job. */
  private resume(
    job: StoredJob,
    position: { epoch: string; last_id: string } | null,
  ): { frame: Record<string, unknown>; events: ProgressEvent[] } {
    const snapshot = buildSnapshot(job);
    if (!position) return { frame: { recovered: true, reason: "ok", snapshot }, events: [] };
    const last = job.events.at(-1)?.id ?? job.trimmedThrough ?? "0-0";
    let reason = "ok";
    if (position.epoch !== job.epoch) reason = "epoch_changed";
    else if (cmp(position.last_id, last) > 0) reason = "ahead";
    else if (job.trimmedThrough && cmp(position.last_id, job.trimmedThrough) < 0) reason = "trimmed";
    if (reason !== "ok") return { frame: { recovered: false, reason, snapshot }, events: [] };
    const after = job.events.findIndex((e) => cmp(e.id as string, position.last_id) > 0);
    const from = after === -1 ? job.events.length : after;
    const start = Math.max(0, from - this.repeatOnReplay);
    return { frame: { recovered: true, reason: "ok" }, events: job.events.slice(start) };
  }

  private sendEvents(conn: Conn, events: ProgressEvent[]): void {
    if (events.length === 0) return;
    if (this.batch) this.send(conn, { op: "batch", events });
    else for (const event of events) this.send(conn, { op: "event", event });
  }

  private send(conn: Conn, frame: Record<string, unknown>): void {
    if (this.silent) return;
    conn.ws.send(JSON.stringify(frame));
  }

  private broadcast(frame: Record<string, unknown>): void {
    for (const conn of this.conns) this.send(conn, frame);
  }
}

/**
 * The job's latest state, computed here independently of the client's reducer (a subset of
 * `progress_bridge/snapshot.py`), so the reducer tests compare two implementations.
 */
function buildSnapshot(job: StoredJob): JobSnapshot {
  const snap = makeSnapshot({
    job_id: job.jobId,
    epoch: job.epoch,
    last_id: job.all.at(-1)?.id ?? "0-0",
    owner: job.owner,
  });
  const zones = new Map<string, ZoneState>();
  let terminal = false;
  const status = (s: JobSnapshot["status"]): void => {
    if (!terminal) snap.status = s;
  };
  for (const e of job.all) {
    snap.updated_ts = e.ts ?? null;
    switch (e.type) {
      case "processing_queued":
        status("queued");
        snap.task_name = e.task_name;
        snap.created_ts = e.ts ?? null;
        break;
      case "processing_started":
        status("started");
        snap.attempt = e.attempt ?? 1;
        break;
      case "processing_retrying":
        status("retrying");
        snap.attempt = e.attempt - 1;
        break;
      case "processing_progress":
        snap.percent = e.percent;
        snap.current_operation = e.current_operation ?? null;
        snap.current_zone = e.current_zone ?? null;
        snap.eta_s = e.eta_s ?? null;
        if (e.zones_completed != null) snap.zones_completed = e.zones_completed;
        if (e.zones_total != null) snap.zones_total = e.zones_total;
        break;
      case "zones_declared":
        for (const z of e.zones) zones.set(z.zone_id, makeZoneState({ ...zones.get(z.zone_id), ...z }));
        if (e.zones_total != null) snap.zones_total = e.zones_total;
        snap.pages = [...(snap.pages ?? []), ...(e.pages ?? [])];
        break;
      case "zone_processing": {
        const z = zones.get(e.zone_id);
        if (z) {
          zones.set(
            e.zone_id,
            makeZoneState({ zone_id: z.zone_id, index: z.index, page: z.page, kind: z.kind, bbox: z.bbox, status: "processing", processing_tool: e.processing_tool }),
          );
        }
        snap.current_zone = e.zone_id;
        break;
      }
      case "zone_completed": {
        const z = zones.get(e.zone_id);
        if (z) {
          zones.set(e.zone_id, {
            ...z,
            status: e.status ?? "completed",
            processing_tool: e.processing_tool,
            confidence: e.confidence ?? null,
            duration_ms: e.duration_ms ?? null,
            error: e.error ?? null,
            summary: e.summary ?? null,
          });
        }
        break;
      }
      case "processing_completed":
        status("completed");
        terminal = true;
        snap.percent = 100;
        snap.eta_s = 0;
        snap.result_summary = e.result_summary ?? null;
        snap.current_operation = null;
        break;
      case "processing_failed":
        status("failed");
        terminal = true;
        snap.eta_s = null;
        snap.current_operation = null;
        snap.error_type = e.error_type;
        snap.error_message = e.error_message;
        break;
      case "processing_cancelled":
        status("cancelled");
        terminal = true;
        snap.eta_s = null;
        snap.current_operation = null;
        snap.error_message = e.reason ?? null;
        break;
      default:
        break;
    }
  }
  snap.zones = [...zones.values()].sort((a, b) => a.index - b.index);
  return snap;
}
