/**
 * What the Chromium page test runs the built page against: one loopback HTTP server that serves
 * `dist/page`, a stand-in for the web app's REST API (src/page/api.ts; answers shaped like
 * web/jobs_api.py's), and the in-process protocol server on `/ws` and `/sse`.
 */
import { existsSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join } from "node:path";
import type { ExportFormat } from "../src/generated/events";
import { ProtocolServer } from "./protocolServer";

const TYPES: Record<string, string> = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".css": "text/css",
  ".map": "application/json",
  ".ico": "image/x-icon",
  ".svg": "image/svg+xml",
};

/** The page's server: static files, the REST stand-in, the bridge. */
export class PageHarness {
  /** Jobs created by uploads so far; the n-th upload's job is `job-n`. */
  jobCounter = 0;
  /** Pages the next uploads report (the upload answer's `pages`). */
  pagesPerUpload = 2;
  /** Every request that was answered 404, as "METHOD path". */
  readonly notFound: string[] = [];
  private exportCounter = 0;

  private constructor(
    private readonly http: Server,
    /** The protocol server on `/ws`. */
    readonly bridge: ProtocolServer,
    private readonly dist: string,
  ) {}

  /** Serve `dist` and the API on a free loopback port. */
  static async start(dist: string, tokens: Record<string, string>): Promise<PageHarness> {
    const http = createServer();
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
    const bridge = await ProtocolServer.start({ httpServer: http, tokens });
    const harness = new PageHarness(http, bridge, dist);
    http.on("request", (req, res) => harness.handle(req, res));
    return harness;
  }

  /** http:// URL of the page. */
  get url(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await this.bridge.stop();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.url?.startsWith("/sse")) {
      this.bridge.handleSse(req, res);
      return;
    }
    if (req.url?.startsWith("/api/")) {
      this.api(req, res).catch((e: unknown) => json(res, 500, { detail: String(e) }));
      return;
    }
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const file = join(this.dist, path === "/" ? "index.html" : path);
    if (!file.startsWith(this.dist) || !existsSync(file)) {
      this.notFound.push(`${req.method} ${path}`);
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(readFileSync(file));
  }

  private async api(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const bridge = this.bridge;
    if (path === "/api/token" && req.method === "POST") {
      const { user } = JSON.parse(await readBody(req)) as { user: string };
      return json(res, 200, { token: `tok-${user}` });
    }
    const user = /^Bearer tok-(.+)$/.exec(req.headers.authorization ?? "")?.[1];
    if (!user) return json(res, 401, { detail: "no token" });
    if (path === "/api/jobs" && req.method === "GET") return json(res, 200, { jobs: bridge.jobsOf(user) });
    if (path === "/api/jobs" && req.method === "POST") {
      const body = await readBody(req);
      const name = /filename="([^"]+)"/.exec(body)?.[1] ?? "upload.pdf";
      const jobId = `job-${++this.jobCounter}`;
      bridge.createJob(jobId, user, name);
      bridge.publish(jobId, { type: "processing_queued", task_name: "tasks.process_pdf" });
      return json(res, 202, { job_id: jobId, display_name: name, pages: this.pagesPerUpload, size_bytes: body.length });
    }
    const cancel = /^\/api\/jobs\/([^/]+)$/.exec(path);
    if (cancel?.[1] && req.method === "DELETE") {
      bridge.publish(cancel[1], { type: "processing_cancelled", reason: `Cancelled by ${user}.` });
      return json(res, 202, { job_id: cancel[1], status: "cancelled" });
    }
    const exportMatch = /^\/api\/jobs\/([^/]+)\/exports(?:\/([^/]+))?$/.exec(path);
    if (exportMatch?.[1]) {
      const jobId = exportMatch[1];
      if (req.method === "POST") {
        const { format } = JSON.parse(await readBody(req)) as { format: ExportFormat };
        const exportId = `x-${format}-${++this.exportCounter}`;
        const filename = `${jobId}-${this.exportCounter}.${format === "markdown" ? "md" : format}`;
        bridge.publish(jobId, { type: "export_started", export_id: exportId, format });
        bridge.publish(jobId, { type: "export_completed", export_id: exportId, format, size_bytes: 2, filename });
        return json(res, 202, { export_id: exportId, job_id: jobId, format });
      }
      res.writeHead(200, { "Content-Type": "application/octet-stream" });
      res.end("{}");
      return;
    }
    json(res, 404, { detail: "Not Found" });
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
