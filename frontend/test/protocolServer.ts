/**
 * A small in-process bridge speaking wire protocol v1 (docs/protocol.md) over a real `ws`
 * WebSocket server, for the client tests. It implements the subset the client relies on: both
 * wire formats (JSON text frames, msgpack binary frames), token subprotocol, hello, job and `user:` room subscriptions with replay after `(epoch, last_id)`,
 * `recovered: false` with a snapshot (trimmed, epoch_changed, ahead), event and batch frames,
 * ping/pong, acks, error frames and close codes.
 *
 * Every frame it sends is a generated `ServerFrame` and every frame it accepts a generated
 * `ClientFrame`; codes, version and subprotocol names are the generated constants. A change to
 * the Python models (`progress_bridge/bridge/core/frames.py`) therefore breaks this file's build
 * as it breaks the client's, and the two cannot drift apart, nor from the bridge.
 *
 * It also serves `GET /sse` (docs/protocol.md, "Server-Sent Events") from the same streams: `job_id`s
 * or a `room`, `?token=`, positions from `Last-Event-ID` or `?last_event_id=` (`m:` + base64url
 * JSON, or `<epoch>:<id>` for one job), each frame one SSE message; refusals before any message as
 * HTTP statuses with `{"detail", "code"}` (401 token, 403 another user's job or the token of user
 * "nobody" as a cross-site origin, 404 unknown job — both for a one-job stream only, else error
 * frames —, 400 bad query). Its messages carry no `id` (the client resumes from its own positions).
 *
 * Test controls: `publish`, `advance` (the clock), `trim`, `recreate`, `closeAll(code)`, `killAll()` (no close frame),
 * `refuse` (close new connections at once), `silent` (send nothing), `repeatOnReplay` (re-send
 * entries before `last_id`, as a retry on the wire may), `batch` (replays as one batch frame),
 * `blockUpgrade` (answer WebSocket handshakes with HTTP 403, as a proxy that refuses them),
 * `refuseSse` (answer SSE requests with this status).
 */
import { createServer, type Server as HttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { decode, encode } from "@msgpack/msgpack";
import { WebSocketServer, type WebSocket } from "ws";
import {
  CloseCode,
  ErrorCode,
  JSON_SUBPROTOCOL,
  MSGPACK_SUBPROTOCOL,
  PROTOCOL_VERSION,
  TOKEN_SUBPROTOCOL_PREFIX,
} from "../src/generated/constants";
import type {
  ClientFrame,
  JobSnapshot,
  ProgressEvent,
  RoomReplay,
  ServerFrame,
  SseFrame,
  StreamPosition,
  SubscribeJobFrame,
  SubscribeRoomFrame,
} from "../src/generated/events";
import { isRefusal, parseClientFrame } from "./server/clientFrames";
import { JobStreams, type EventBody } from "./server/streams";

export type { EventBody } from "./server/streams";

/** A wire format, by the subprotocol that asked for it. */
type Format = typeof JSON_SUBPROTOCOL | typeof MSGPACK_SUBPROTOCOL;

interface Conn {
  id: number;
  /** The WebSocket, or `null` for an SSE stream. */
  ws: WebSocket | null;
  /** The SSE response, or `null` for a WebSocket. */
  sse: ServerResponse | null;
  format: Format;
  user: string;
  jobs: Set<string>;
  rooms: Set<string>;
}

/** A frame the server received, with the connection it came on. */
export interface ReceivedFrame {
  conn: number;
  /** The connection's wire format (the subprotocol the server picked). */
  format: Format;
  frame: ClientFrame;
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

/** The in-process bridge; `start()` it, `stop()` it. */
export class ProtocolServer {
  /** Every client frame received, in order. */
  readonly received: ReceivedFrame[] = [];
  /** Connections accepted so far (including refused ones). */
  connectionsAccepted = 0;
  /** The subprotocols each connection offered, in order. */
  readonly offers: string[][] = [];
  /** When true the server sends nothing at all (no pings, no events, no replies). */
  silent = false;
  /** On a resume, first re-send this many entries at or before `last_id`. */
  repeatOnReplay = 0;
  /** Send replays as one `batch` frame. */
  batch = false;
  /** Close the next `count` connections (`Infinity`: all, until reset) right after the handshake. */
  refuse: { code: CloseCode; count: number } | null = null;
  /** While true, WebSocket handshakes are answered HTTP 403 (the socket never opens). */
  blockUpgrade = false;
  /** WebSocket handshakes answered 403 so far. */
  upgradesBlocked = 0;
  /** When set, SSE requests are answered with this HTTP status (and `refuseSseCode` as the code). */
  refuseSse: number | null = null;
  refuseSseCode = "unavailable";
  /** Every SSE request's URL, in order (path and query). */
  readonly sseRequests: URL[] = [];

  private readonly streams = new JobStreams();
  private readonly conns = new Set<Conn>();
  private pingTimer: ReturnType<typeof setInterval> | null = null;

  private constructor(
    private readonly wss: WebSocketServer,
    private readonly http: HttpServer,
    private readonly options: ProtocolServerOptions,
  ) {}

  /**
   * Start on a free loopback port (or on `options.httpServer`, whose owner routes `/sse` requests
   * to `handleSse`).
   */
  static async start(options: ProtocolServerOptions = {}): Promise<ProtocolServer> {
    // The first format in the offer, as the bridge picks it.
    const handleProtocols = (offered: Set<string>) =>
      [...offered].find((p) => p === JSON_SUBPROTOCOL || p === MSGPACK_SUBPROTOCOL) ?? false;
    const http = options.httpServer ?? createServer();
    if (!options.httpServer) await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", () => resolve()));
    let server: ProtocolServer | null = null;
    const verifyClient = (_info: unknown, done: (ok: boolean, status?: number) => void) => {
      if (!server?.blockUpgrade) return done(true);
      server.upgradesBlocked++;
      done(false, 403);
    };
    const wss = new WebSocketServer({
      server: http,
      ...(options.httpServer ? { path: "/ws" } : {}),
      handleProtocols,
      verifyClient,
    });
    server = new ProtocolServer(wss, http, options);
    const self = server;
    if (!options.httpServer) http.on("request", (req, res) => self.handleSse(req, res));
    wss.on("connection", (ws, req) => self.accept(ws, req.headers["sec-websocket-protocol"] ?? ""));
    if (options.pingIntervalMs) {
      self.pingTimer = setInterval(() => self.broadcast({ op: "ping" }), options.pingIntervalMs);
    }
    return self;
  }

  /** ws:// URL of the endpoint. */
  get url(): string {
    const { port } = this.http.address() as AddressInfo;
    return `ws://127.0.0.1:${port}/ws`;
  }

  /** http:// URL of the SSE endpoint. */
  get sseUrl(): string {
    const { port } = this.http.address() as AddressInfo;
    return `http://127.0.0.1:${port}/sse`;
  }

  /** Open SSE streams. */
  get openSseStreams(): number {
    return [...this.conns].filter((c) => c.sse).length;
  }

  /** Open connections. */
  get openConnections(): number {
    return this.conns.size;
  }

  /** Frames of one op the server received. */
  framesOf<Op extends ClientFrame["op"]>(op: Op): Extract<ClientFrame, { op: Op }>[] {
    return this.received
      .map((r) => r.frame)
      .filter((f): f is Extract<ClientFrame, { op: Op }> => f.op === op);
  }

  /** Create a job owned by `owner`, on `documentId` if given (new epoch, empty stream). */
  createJob(jobId: string, owner = "alice", documentId: string | null = null): void {
    this.streams.create(jobId, owner, documentId);
  }

  /** Append one event to a job's stream and deliver it live; returns it with id and epoch. */
  publish(jobId: string, body: EventBody): ProgressEvent {
    const event = this.streams.append(jobId, body);
    const room = `user:${this.streams.get(jobId).owner}`;
    for (const conn of this.conns) {
      if (conn.jobs.has(jobId) || conn.rooms.has(room)) this.send(conn, { op: "event", event });
    }
    return event;
  }

  /** Let `seconds` pass on the server's clock: later events get later ids and `ts`. */
  advance(seconds: number): void {
    this.streams.advance(seconds);
  }

  /** Drop all but the newest `keep` entries of a job's stream (as MAXLEN trimming does). */
  trim(jobId: string, keep: number): void {
    this.streams.trim(jobId, keep);
  }

  /** The stream was lost and recreated: new epoch, history gone. */
  recreate(jobId: string): void {
    this.streams.recreate(jobId);
  }

  /** Snapshots of every job `owner` owns (what `GET /api/jobs` returns). */
  jobsOf(owner: string): JobSnapshot[] {
    return this.streams.ownedBy(owner).map((j) => this.streams.snapshot(j.jobId));
  }

  /** The server's current snapshot of a job (what `GET /api/jobs/{id}` returns). */
  snapshot(jobId: string): JobSnapshot {
    return this.streams.snapshot(jobId);
  }

  /** Close every connection with a close frame carrying `code` (an SSE stream's `close` frame). */
  closeAll(code: CloseCode, reason = ""): void {
    for (const conn of this.conns) {
      if (conn.ws) conn.ws.close(code, reason);
      else this.endSse(conn, code, reason);
    }
  }

  /** Drop every connection without a close frame (the client sees 1006; an SSE stream breaks). */
  killAll(): void {
    for (const conn of this.conns) {
      if (conn.ws) conn.ws.terminate();
      else conn.sse?.socket?.destroy();
    }
  }

  /** Stop the server. */
  async stop(): Promise<void> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.killAll();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    if (!this.options.httpServer) {
      this.http.closeAllConnections();
      await new Promise<void>((resolve) => this.http.close(() => resolve()));
    }
  }

  // ── Server-Sent Events ───────────────────────────────────────────────────────────────────

  /** Serve one `GET /sse` request (anything else is 404). */
  handleSse(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== "/sse") return void refuseHttp(res, 404, "not_found", "no such route");
    this.sseRequests.push(url);
    if (this.refuseSse) return void refuseHttp(res, this.refuseSse, this.refuseSseCode, "refused by the test");
    const user = this.options.tokens ? this.options.tokens[url.searchParams.get("token") ?? ""] : "alice";
    if (!user) return void refuseHttp(res, 401, "unauthenticated", "bad token");
    if (user === "nobody") return void refuseHttp(res, 403, "forbidden_origin", "cross-site requests are not allowed");
    const jobIds = url.searchParams.getAll("job_id");
    const room = url.searchParams.get("room");
    if ((jobIds.length > 0) === (room !== null)) {
      return void refuseHttp(res, 400, ErrorCode.BAD_FRAME, "give job_id (one or more) or room, not both");
    }
    let positions: Record<string, StreamPosition>;
    try {
      const last = req.headers["last-event-id"] ?? url.searchParams.get("last_event_id");
      positions = typeof last === "string" && last ? decodeLastEventId(last, jobIds) : {};
    } catch (e) {
      return void refuseHttp(res, 400, ErrorCode.INVALID_POSITION, String(e));
    }
    if (jobIds.length === 1) {
      const job = this.streams.find(jobIds[0]!);
      if (!job) return void refuseHttp(res, 404, ErrorCode.NOT_FOUND, `no job ${jobIds[0]}`);
      if (job.owner !== user) return void refuseHttp(res, 403, ErrorCode.FORBIDDEN, "not your job");
    }
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-store" });
    res.flushHeaders();
    const id = ++this.connectionsAccepted;
    const conn: Conn = { id, ws: null, sse: res, format: JSON_SUBPROTOCOL, user, jobs: new Set(), rooms: new Set() };
    this.conns.add(conn);
    res.on("close", () => this.conns.delete(conn));
    if (room !== null) {
      this.subscribeRoom(conn, { op: "subscribe", room, ...(Object.keys(positions).length ? { positions } : {}) });
      return;
    }
    for (const jobId of jobIds) {
      const pos = positions[jobId];
      this.subscribeJob(conn, { op: "subscribe", job_id: jobId, ref: jobId, ...(pos ?? {}) });
    }
  }

  private endSse(conn: Conn, code: number, reason: string): void {
    this.writeSse(conn, { op: "close", code, reason });
    conn.sse?.end();
    this.conns.delete(conn);
  }

  private writeSse(conn: Conn, frame: SseFrame): void {
    conn.sse?.write(`data: ${JSON.stringify(frame)}\n\n`);
  }

  // ── protocol ─────────────────────────────────────────────────────────────────────────────

  private accept(ws: WebSocket, offered: string): void {
    const id = ++this.connectionsAccepted;
    this.offers.push(offered.split(",").map((p) => p.trim()));
    if (this.refuse && this.refuse.count > 0) {
      this.refuse.count -= 1;
      ws.close(this.refuse.code, "refused");
      return;
    }
    const user = this.authenticate();
    if (typeof user === "number") {
      ws.close(user, user === CloseCode.FORBIDDEN ? "forbidden" : "unauthenticated");
      return;
    }
    const format = ws.protocol === MSGPACK_SUBPROTOCOL ? MSGPACK_SUBPROTOCOL : JSON_SUBPROTOCOL;
    const conn: Conn = { id, ws, sse: null, format, user, jobs: new Set(), rooms: new Set() };
    this.conns.add(conn);
    ws.on("close", () => this.conns.delete(conn));
    ws.on("message", (data, isBinary) => this.receive(conn, data as Buffer, isBinary));
    const heartbeat_s = this.options.heartbeatS ?? 15;
    this.send(conn, { op: "hello", protocol: PROTOCOL_VERSION, user, heartbeat_s, max_frame_bytes: 65_536 });
  }

  /** The token's user, or the close code refusing it. */
  private authenticate(): string | CloseCode {
    if (!this.options.tokens) return "alice";
    const token = this.offers
      .at(-1)!
      .find((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX))
      ?.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
    const user = token ? this.options.tokens[token] : undefined;
    if (!user) return CloseCode.UNAUTHENTICATED;
    return user === "nobody" ? CloseCode.FORBIDDEN : user;
  }

  private receive(conn: Conn, bytes: Buffer, isBinary: boolean): void {
    let data: unknown;
    try {
      if (isBinary !== (conn.format === MSGPACK_SUBPROTOCOL)) {
        throw new Error(`${isBinary ? "binary" : "text"} frame on a ${conn.format} connection`);
      }
      data = isBinary ? decode(bytes) : JSON.parse(bytes.toString("utf8"));
    } catch (e) {
      this.send(conn, { op: "error", ref: null, code: ErrorCode.BAD_JSON, message: String(e) });
      return;
    }
    const frame = parseClientFrame(data);
    if (isRefusal(frame)) {
      const ref = (data as { ref?: unknown }).ref;
      this.send(conn, { op: "error", ref: typeof ref === "string" ? ref : null, ...frame });
      return;
    }
    this.received.push({ conn: conn.id, format: conn.format, frame });
    switch (frame.op) {
      case "subscribe":
        if ("job_id" in frame) this.subscribeJob(conn, frame);
        else this.subscribeRoom(conn, frame);
        return;
      case "unsubscribe":
        if ("job_id" in frame) conn.jobs.delete(frame.job_id);
        else conn.rooms.delete(frame.room);
        this.send(conn, { op: "unsubscribed", ref: frame.ref ?? null, ...("job_id" in frame ? { job_id: frame.job_id } : { room: frame.room }) });
        return;
      case "ack":
      case "pong":
        return;
      default:
        frame satisfies never;
    }
  }

  private subscribeJob(conn: Conn, frame: SubscribeJobFrame): void {
    const ref = frame.ref ?? null;
    const job = this.streams.find(frame.job_id);
    if (!job || job.owner !== conn.user) {
      const [code, message] = job ? [ErrorCode.FORBIDDEN, "not your job"] : [ErrorCode.NOT_FOUND, `no job ${frame.job_id}`];
      this.send(conn, { op: "error", ref, code, message });
      return;
    }
    conn.jobs.add(job.jobId);
    const position = frame.epoch && frame.last_id ? { epoch: frame.epoch, last_id: frame.last_id } : null;
    const { events, ...reply } = this.streams.resume(job.jobId, position, this.repeatOnReplay);
    this.send(conn, { op: "subscribed", ref, job_id: job.jobId, epoch: job.epoch, ...reply });
    this.sendEvents(conn, events);
  }

  private subscribeRoom(conn: Conn, frame: SubscribeRoomFrame): void {
    const ref = frame.ref ?? null;
    if (frame.room !== `user:${conn.user}`) {
      this.send(conn, { op: "error", ref, code: ErrorCode.FORBIDDEN, message: "not your room" });
      return;
    }
    conn.rooms.add(frame.room);
    // Jobs with a position are replayed (and reported in `replays`); the others are listed.
    const positions: Record<string, StreamPosition | undefined> = frame.positions ?? {};
    const mine = this.streams.ownedBy(conn.user);
    const jobs = mine.filter((j) => !positions[j.jobId]).map((j) => this.streams.snapshot(j.jobId));
    const resumed = mine
      .filter((j) => positions[j.jobId])
      .map((j) => ({ job: j, ...this.streams.resume(j.jobId, positions[j.jobId]!, this.repeatOnReplay) }));
    const replays: RoomReplay[] = resumed.map(({ job, recovered, reason, snapshot }) => ({
      job_id: job.jobId,
      recovered,
      reason,
      epoch: job.epoch,
      snapshot,
    }));
    const recovered = replays.every((r) => r.recovered);
    this.send(conn, { op: "subscribed", ref, room: frame.room, recovered, reason: "ok", epoch: null, snapshot: null, jobs, replays });
    for (const { events } of resumed) this.sendEvents(conn, events);
  }

  private sendEvents(conn: Conn, events: ProgressEvent[]): void {
    if (events.length === 0) return;
    if (this.batch) this.send(conn, { op: "batch", events });
    else for (const event of events) this.send(conn, { op: "event", event });
  }

  private send(conn: Conn, frame: ServerFrame): void {
    if (this.silent) return;
    if (conn.ws) conn.ws.send(conn.format === MSGPACK_SUBPROTOCOL ? encode(frame) : JSON.stringify(frame));
    else if (frame.op !== "hello" && frame.op !== "ping" && frame.op !== "unsubscribed") this.writeSse(conn, frame);
  }

  private broadcast(frame: ServerFrame): void {
    for (const conn of this.conns) this.send(conn, frame);
  }
}

/** A refusal before any SSE message: an HTTP status and `{"detail", "code"}`, as the bridge answers. */
function refuseHttp(res: ServerResponse, status: number, code: string, detail: string): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify({ detail, code }));
}

/** Positions from a `Last-Event-ID`: `m:` + base64url JSON `{job: "<epoch>:<id>"}`, or one job's `<epoch>:<id>`. */
function decodeLastEventId(value: string, jobIds: string[]): Record<string, StreamPosition> {
  const entries: [string, string][] = value.startsWith("m:")
    ? Object.entries(JSON.parse(Buffer.from(value.slice(2), "base64url").toString("utf8")) as Record<string, string>)
    : jobIds.length === 1
      ? [[jobIds[0]!, value]]
      : (() => {
          throw new Error("a single position needs exactly one job_id");
        })();
  const positions: Record<string, StreamPosition> = {};
  for (const [jobId, text] of entries) {
    const cut = text.lastIndexOf(":");
    const last_id = text.slice(cut + 1);
    if (cut <= 0 || !/^\d+-\d+$/.test(last_id)) throw new Error(`bad position ${JSON.stringify(text)}`);
    positions[jobId] = { epoch: text.slice(0, cut), last_id };
  }
  return positions;
}
