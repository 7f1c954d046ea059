/**
 * The job page in headless Chromium (Debian's /usr/bin/chromium via playwright-core), against
 * the in-process protocol server plus a stand-in for the web app's REST API. This checks the
 * page itself; the end-to-end run against the real stack belongs to the Python side's tests.
 *
 * Screenshots go to test-artifacts/ at the repository root.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CloseCode } from "../src/client/index";
import { TIMEOUT } from "./helpers";
import { ProtocolServer } from "./protocolServer";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const FRONTEND = resolve(import.meta.dirname, "..");
const DIST = join(FRONTEND, "dist", "page");
const ARTIFACTS = resolve(FRONTEND, "..", "test-artifacts");
const TYPES: Record<string, string> = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".css": "text/css",
  ".map": "application/json",
};

let http: Server;
let bridge: ProtocolServer;
let browser: Browser;
let base: string;
let jobCounter = 0;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
}

function userOf(req: IncomingMessage): string | null {
  const match = /^Bearer tok-(.+)$/.exec(req.headers.authorization ?? "");
  return match?.[1] ?? null;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** A stand-in for the demo web app's REST API (docs in src/page/api.ts). */
async function api(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://x");
  const path = url.pathname;
  if (path === "/api/token" && req.method === "POST") {
    const { user } = JSON.parse(await readBody(req)) as { user: string };
    json(res, 200, { token: `tok-${user}` });
    return;
  }
  const user = userOf(req);
  if (!user) return json(res, 401, { detail: "no token" });
  if (path === "/api/jobs" && req.method === "GET") return json(res, 200, { jobs: bridge.jobsOf(user) });
  if (path === "/api/jobs" && req.method === "POST") {
    await readBody(req);
    const jobId = `job-${++jobCounter}`;
    bridge.createJob(jobId, user);
    bridge.publish(jobId, { type: "processing_queued", task_name: "tasks.process_pdf" });
    return json(res, 202, { job_id: jobId });
  }
  const exportMatch = /^\/api\/jobs\/([^/]+)\/exports(?:\/([^/]+))?$/.exec(path);
  if (exportMatch?.[1]) {
    const jobId = exportMatch[1];
    if (req.method === "POST") {
      const { format } = JSON.parse(await readBody(req)) as { format: "json" | "csv" | "markdown" };
      const exportId = `x-${format}`;
      bridge.publish(jobId, { type: "export_started", export_id: exportId, format });
      bridge.publish(jobId, {
        type: "export_completed",
        export_id: exportId,
        format,
        size_bytes: 2,
        filename: `${jobId}.${format === "markdown" ? "md" : format}`,
      });
      return json(res, 202, { export_id: exportId });
    }
    res.writeHead(200, { "Content-Type": "application/octet-stream" });
    res.end("{}");
    return;
  }
  json(res, 404, { detail: "Not Found" });
}

function serveStatic(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? "/", "http://x").pathname;
  const file = join(DIST, path === "/" ? "index.html" : path);
  if (!file.startsWith(DIST) || !existsSync(file)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" });
  res.end(readFileSync(file));
}

async function texts(page: Page, selector: string): Promise<string[]> {
  return page.locator(selector).allInnerTexts();
}

// In CI (CI=true) a missing Chromium fails the test instead of skipping it.
describe.runIf(existsSync(CHROMIUM) || !!process.env.CI)("job page in Chromium", () => {
  beforeAll(async () => {
    await build({ configFile: join(FRONTEND, "vite.page.config.ts"), logLevel: "error" });
    http = createServer((req, res) => {
      if (req.url?.startsWith("/api/")) {
        api(req, res).catch((e: unknown) => json(res, 500, { detail: String(e) }));
      } else {
        serveStatic(req, res);
      }
    });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    bridge = await ProtocolServer.start({ httpServer: http, tokens: { "tok-alice": "alice", "tok-bob": "bob" } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
      ],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await bridge?.stop();
    await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
  });

  it("shows upload, live zones, a reconnect banner, and ends complete with no duplicate log lines", async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.setDefaultTimeout(TIMEOUT);

    // 1. Sign in and upload a PDF with the file picker.
    await page.goto(base);
    await page.getByLabel("User name").fill("alice");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByLabel("Drop a PDF here, or choose a file").setInputFiles({
      name: "report.pdf",
      mimeType: "application/pdf",
      buffer: Buffer.from("%PDF-1.4\n%%EOF\n"),
    });
    await page.getByTestId("job-status").filter({ hasText: "Queued" }).waitFor();
    const jobId = `job-${jobCounter}`;

    // 2. The worker declares zones on two pages and starts on them.
    const zones = [0, 1, 2, 3, 4, 5].map((i) => ({
      zone_id: `z${i}`,
      index: i,
      page: i < 3 ? 1 : 2,
      kind: i % 3 === 2 ? "table" : "text",
      bbox: [50, 60 + (i % 3) * 220, 560, 250 + (i % 3) * 220] as [number, number, number, number],
    }));
    bridge.publish(jobId, { type: "processing_started", attempt: 1 });
    bridge.publish(jobId, {
      type: "zones_declared",
      zones,
      pages: [
        { number: 1, width: 612, height: 792 },
        { number: 2, width: 612, height: 792 },
      ],
      zones_total: 6,
    });
    for (const i of [0, 1]) {
      bridge.publish(jobId, { type: "zone_processing", zone_id: `z${i}`, zone_index: i, processing_tool: "pdfplumber" });
      bridge.publish(jobId, { type: "zone_completed", zone_id: `z${i}`, zone_index: i, processing_tool: "pdfplumber", confidence: 0.95, duration_ms: 20 });
    }
    bridge.publish(jobId, { type: "zone_processing", zone_id: "z2", zone_index: 2, processing_tool: "camelot" });
    bridge.publish(jobId, { type: "processing_progress", percent: 33, current_operation: "Extracting table on page 1", eta_s: 12, zones_completed: 2, zones_total: 6 });
    await page.getByTestId("progress-text").filter({ hasText: "33%" }).waitFor();
    await expect(page.getByTestId("current-operation").innerText()).resolves.toBe("Extracting table on page 1");
    await expect(page.locator('rect[data-status="completed"]').count()).resolves.toBe(2);
    await expect(page.locator('rect[data-status="processing"]').count()).resolves.toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, "page-mid-run.png"), fullPage: true });

    // 3. The bridge goes away (and refuses reconnects for a while): the banner says so.
    bridge.refuse = { code: CloseCode.RESTART, count: Infinity };
    bridge.killAll();
    await page.getByRole("status").filter({ hasText: "Reconnecting" }).waitFor();

    // 4. The job finishes while the page is away.
    bridge.publish(jobId, { type: "zone_completed", zone_id: "z2", zone_index: 2, processing_tool: "camelot", confidence: 0.8 });
    for (const i of [3, 4, 5]) {
      bridge.publish(jobId, { type: "zone_processing", zone_id: `z${i}`, zone_index: i, processing_tool: "pdfplumber" });
      bridge.publish(jobId, { type: "zone_completed", zone_id: `z${i}`, zone_index: i, processing_tool: "pdfplumber", confidence: 0.9 });
    }
    bridge.publish(jobId, { type: "processing_progress", percent: 100, zones_completed: 6, zones_total: 6 });
    bridge.publish(jobId, { type: "processing_completed", result_summary: "6 zones extracted" });

    // 5. The bridge is back; the page resumes and ends with the full picture.
    bridge.refuse = null;
    await page.getByTestId("job-status").filter({ hasText: "Completed" }).waitFor({ timeout: 3 * TIMEOUT });
    await page.getByRole("status").filter({ hasText: "Reconnecting" }).waitFor({ state: "hidden" });
    await expect(page.locator('rect[data-status="completed"]').count()).resolves.toBe(6);
    const lines = await texts(page, '[data-testid="event-log"] li');
    const keys = await page.locator('[data-testid="event-log"] li').evaluateAll((els) =>
      els.map((el) => el.getAttribute("data-key")),
    );
    expect(new Set(keys).size).toBe(keys.length);
    expect(lines.filter((l) => l.includes("Zone z2 done"))).toHaveLength(1);
    expect(lines.filter((l) => l.includes("Completed"))).toHaveLength(1);

    // 6. Export, on a narrow screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole("button", { name: "Export CSV" }).click();
    await page.getByRole("button", { name: `Download ${jobId}.csv` }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(ARTIFACTS, "page-end-narrow.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("accepts a PDF dropped on the drop zone", async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(base);
    await page.getByLabel("User name").fill("alice");
    await page.getByRole("button", { name: "Sign in" }).click();
    const before = jobCounter;
    await page.locator(".drop").evaluate((zone) => {
      const data = new DataTransfer();
      data.items.add(new File(["%PDF-1.4\n%%EOF\n"], "dropped.pdf", { type: "application/pdf" }));
      zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    await page.getByText("dropped.pdf uploaded.").waitFor();
    expect(jobCounter).toBe(before + 1);
    await page.waitForURL(new RegExp(`#job=job-${jobCounter}$`));
    await page.getByTestId("job-status").filter({ hasText: "Queued" }).waitFor();
    await page.close();
  }, 30_000);

  it("does not show one user's job to another", async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(`${base}/#job=job-1`);
    await page.getByLabel("User name").fill("bob");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "forbidden" }).waitFor();
    await expect(page.getByText("No jobs yet.").count()).resolves.toBe(1);
    await page.close();
  }, 30_000);
});
