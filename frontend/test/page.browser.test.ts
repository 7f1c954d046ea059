/**
 * The job page in headless Chromium (Debian's /usr/bin/chromium via playwright-core), against
 * the in-process protocol server plus a stand-in for the web app's REST API. This checks the
 * page itself; the end-to-end run against the real stack belongs to the Python side's tests.
 *
 * Screenshots go to test-artifacts/ at the repository root.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { CloseCode } from "../src/client/index";
import { TIMEOUT } from "./helpers";
import { PageHarness } from "./pageHarness";
import type { ProtocolServer } from "./protocolServer";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const FRONTEND = resolve(import.meta.dirname, "..");
const DIST = join(FRONTEND, "dist", "page");
const ARTIFACTS = resolve(FRONTEND, "..", "test-artifacts");

let harness: PageHarness;
let bridge: ProtocolServer;
let browser: Browser;
let base: string;

async function texts(page: Page, selector: string): Promise<string[]> {
  return page.locator(selector).allInnerTexts();
}

/** A new page, signed in as `user`. */
async function signedIn(user: string, viewport = { width: 1100, height: 900 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(base);
  await page.getByLabel("User name").fill(user);
  await page.getByRole("button", { name: "Sign in" }).click();
  return page;
}

/** Upload a PDF named `name` with the file picker; returns the new job's id. */
async function upload(page: Page, name: string): Promise<string> {
  const before = harness.jobCounter;
  await page.getByLabel("Drop a PDF here, or choose a file").setInputFiles({
    name,
    mimeType: "application/pdf",
    buffer: Buffer.from("%PDF-1.4\n%%EOF\n"),
  });
  await page.waitForURL(new RegExp(`#job=job-${before + 1}$`));
  return `job-${before + 1}`;
}

// In CI (CI=true) a missing Chromium fails the test instead of skipping it.
describe.runIf(existsSync(CHROMIUM) || !!process.env.CI)("job page in Chromium", () => {
  beforeAll(async () => {
    await build({ configFile: join(FRONTEND, "vite.page.config.ts"), logLevel: "error" });
    harness = await PageHarness.start(DIST, { "tok-alice": "alice", "tok-bob": "bob", "tok-carol": "carol", "tok-dave": "dave", "tok-erin": "erin" });
    bridge = harness.bridge;
    base = harness.url;
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
    await harness?.stop();
  });

  it("shows upload, live zones, a reconnect banner, and ends complete with no duplicate log lines", async () => {
    // 1. Sign in and upload a PDF with the file picker.
    const page = await signedIn("alice");
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    const jobId = await upload(page, "report.pdf");
    await page.getByTestId("job-status").filter({ hasText: "Queued" }).waitFor();

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
    await page.getByRole("button", { name: new RegExp(`^Download ${jobId}-\\d+\\.csv$`) }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(ARTIFACTS, "page-end-narrow.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);

  it("falls back to Server-Sent Events while WebSocket upgrades are refused, and goes back when they pass", async () => {
    // 1. Every WebSocket handshake is refused (HTTP 403), as behind a proxy that blocks them.
    //    Playwright's clock runs at real speed until the test jumps it ahead to the next probe.
    bridge.blockUpgrade = true;
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    onTestFinished(async () => {
      bridge.blockUpgrade = false; // whatever happened, the next tests get WebSockets
      await context.close();
    });
    await context.clock.install();
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(base);
    await page.getByLabel("User name").fill("erin");
    await page.getByRole("button", { name: "Sign in" }).click();
    const banner = page.getByTestId("connection-banner");
    await page.locator('[data-testid="connection-banner"][data-state="open"][data-transport="sse"]').waitFor();
    await expect(banner.innerText()).resolves.toContain("Server-Sent Events");
    expect(bridge.upgradesBlocked).toBeGreaterThanOrEqual(3);

    // 2. The job runs over SSE: queued, zones, progress.
    const jobId = await upload(page, "blocked.pdf");
    await page.getByTestId("job-status").filter({ hasText: "Queued" }).waitFor();
    const zones = [0, 1, 2, 3].map((i) => ({
      zone_id: `z${i}`,
      index: i,
      page: 1,
      kind: "text",
      bbox: [50, 60 + i * 170, 560, 200 + i * 170] as [number, number, number, number],
    }));
    bridge.publish(jobId, { type: "processing_started", attempt: 1 });
    bridge.publish(jobId, { type: "zones_declared", zones, pages: [{ number: 1, width: 612, height: 792 }], zones_total: 4 });
    for (const i of [0, 1]) {
      bridge.publish(jobId, { type: "zone_processing", zone_id: `z${i}`, zone_index: i, processing_tool: "pdfplumber" });
      bridge.publish(jobId, { type: "zone_completed", zone_id: `z${i}`, zone_index: i, processing_tool: "pdfplumber", confidence: 0.9 });
    }
    const halfway = bridge.publish(jobId, { type: "processing_progress", percent: 50, zones_completed: 2, zones_total: 4 });
    await page.getByTestId("progress-text").filter({ hasText: "50%" }).waitFor();
    await expect(page.locator('rect[data-status="completed"]').count()).resolves.toBe(2);
    expect(bridge.sseRequests.some((u) => u.searchParams.getAll("job_id").includes(jobId))).toBe(true);
    const overWebSocket = () => bridge.framesOf("subscribe").filter((f) => "job_id" in f && f.job_id === jobId);
    expect(overWebSocket()).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, "page-over-sse.png"), fullPage: true });

    // 3. WebSockets pass again: at the next probe the page moves back, resuming the job from
    //    the last event SSE delivered, and the banner goes away.
    bridge.blockUpgrade = false;
    await context.clock.fastForward(31_000);
    await page.locator('[data-testid="connection-banner"][data-state="open"][data-transport="websocket"]').waitFor({ state: "attached" });
    await banner.waitFor({ state: "hidden" });
    expect(overWebSocket().at(-1)).toMatchObject({ job_id: jobId, last_id: halfway.id });

    // 4. The job ends over the WebSocket; each event is in the log once.
    for (const i of [2, 3]) {
      bridge.publish(jobId, { type: "zone_processing", zone_id: `z${i}`, zone_index: i, processing_tool: "pdfplumber" });
      bridge.publish(jobId, { type: "zone_completed", zone_id: `z${i}`, zone_index: i, processing_tool: "pdfplumber", confidence: 0.9 });
    }
    bridge.publish(jobId, { type: "processing_progress", percent: 100, zones_completed: 4, zones_total: 4 });
    bridge.publish(jobId, { type: "processing_completed", result_summary: "4 zones extracted" });
    await page.getByTestId("job-status").filter({ hasText: "Completed" }).waitFor();
    await expect(page.locator('rect[data-status="completed"]').count()).resolves.toBe(4);
    const keys = await page.locator('[data-testid="event-log"] li').evaluateAll((els) => els.map((el) => el.getAttribute("data-key")));
    expect(new Set(keys).size).toBe(keys.length);
    const lines = await texts(page, '[data-testid="event-log"] li');
    for (const zone of ["z0", "z1", "z2", "z3"]) expect(lines.filter((l) => l.includes(`Zone ${zone} done`))).toHaveLength(1);
    expect(errors).toEqual([]);
  }, 60_000);

  it("accepts a PDF dropped on the drop zone", async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(TIMEOUT);
    await page.goto(base);
    await page.getByLabel("User name").fill("alice");
    await page.getByRole("button", { name: "Sign in" }).click();
    const before = harness.jobCounter;
    await page.locator(".drop").evaluate((zone) => {
      const data = new DataTransfer();
      data.items.add(new File(["%PDF-1.4\n%%EOF\n"], "dropped.pdf", { type: "application/pdf" }));
      zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    await page.getByText("dropped.pdf uploaded.").waitFor();
    expect(harness.jobCounter).toBe(before + 1);
    await page.waitForURL(new RegExp(`#job=job-${harness.jobCounter}$`));
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

  it("shows queued and starting states, the page total, upload times, and tells two uploads of a file apart", async () => {
    // 1. Upload the same file twice (3 pages each).
    harness.pagesPerUpload = 3;
    const page = await signedIn("carol");
    const first = await upload(page, "minutes.pdf");
    await page.getByTestId("job-list").getByRole("button").first().waitFor();
    const second = await upload(page, "minutes.pdf");

    // 2. The list names them apart (newest first) and shows when each was uploaded.
    const list = page.getByTestId("job-list").getByRole("button");
    await list.nth(1).waitFor();
    const items = await list.allInnerTexts();
    expect(items.map((t) => t.split("\n")[0])).toEqual(["minutes.pdf (2)", "minutes.pdf"]);
    // (The test server's clock starts in 2023: another day, so with the date.)
    for (const item of items) expect(item).toMatch(/Uploaded (\d\d:\d\d:\d\d|\d{1,2} [A-Z][a-z]{2} \d\d:\d\d)$/);
    expect(await list.nth(0).getAttribute("title")).toBe(second);

    // 3. Queued, then starting: said in words, with an indeterminate bar; then pages of 3.
    const progressText = page.getByTestId("progress-text");
    await progressText.filter({ hasText: "Queued — waiting for a worker · 3 pages to analyse" }).waitFor();
    expect(await page.getByRole("progressbar", { name: "Job progress" }).getAttribute("value")).toBeNull();
    bridge.publish(second, { type: "processing_started", attempt: 1 });
    await progressText.filter({ hasText: "Starting — reading the document · 3 pages to analyse" }).waitFor();
    bridge.publish(second, {
      type: "zones_declared",
      zones: [{ zone_id: "p1-z0", index: 0, page: 1, kind: "text", bbox: [50, 60, 560, 200] }],
      pages: [{ number: 1, width: 612, height: 792 }],
    });
    await progressText.filter({ hasText: "0% · 0/1 zones so far · 0 of 3 pages analysed" }).waitFor();
    expect(await page.getByTestId("page-3").getAttribute("data-state")).toBe("waiting");
    expect(first).not.toBe(second);
    await page.screenshot({ path: join(ARTIFACTS, "page-two-uploads.png"), fullPage: true });
    await page.close();
  }, 30_000);

  it("estimates an ETA without one in the events, and after a cancel shows each page's end and no stale operation", async () => {
    // 1. A 4-page split job runs: its progress events carry no ETA.
    harness.pagesPerUpload = 4;
    const page = await signedIn("dave");
    const jobId = await upload(page, "manual.pdf");
    bridge.publish(jobId, { type: "processing_started", attempt: 1 });
    const zones = [0, 1, 2].map((i) => ({ zone_id: `p${1 + (i >> 1)}-z${i & 1}`, index: i, page: 1 + (i >> 1), kind: "text", bbox: [50, 60 + 300 * (i & 1), 560, 300 + 300 * (i & 1)] as [number, number, number, number] }));
    bridge.publish(jobId, { type: "zones_declared", zones, pages: [1, 2].map((number) => ({ number, width: 612, height: 792 })) });
    bridge.publish(jobId, { type: "zone_processing", zone_id: "p1-z0", zone_index: 0, processing_tool: "pdfplumber" });
    bridge.publish(jobId, { type: "zone_completed", zone_id: "p1-z0", zone_index: 0, processing_tool: "pdfplumber" });
    bridge.publish(jobId, { type: "zone_processing", zone_id: "p1-z1", zone_index: 1, processing_tool: "pdfplumber" });
    for (let i = 1; i <= 5; i++) {
      bridge.advance(1);
      bridge.publish(jobId, { type: "processing_progress", percent: 4 * i, current_operation: "Extracting text p1-z1" });
    }
    await page.getByTestId("eta").filter({ hasText: "left" }).waitFor();
    expect(await page.getByTestId("eta").getAttribute("data-estimated")).toBe("true");
    await page.getByTestId("current-operation").filter({ hasText: "Extracting text p1-z1" }).waitFor();

    // 2. Cancel; the part that was running still reports a little before it notices.
    await page.getByRole("button", { name: "Cancel job" }).click();
    await page.getByTestId("job-status").filter({ hasText: "Cancelled" }).waitFor();
    bridge.publish(jobId, { type: "processing_progress", percent: 22, current_operation: "Extracting text p2-z0" });
    bridge.publish(jobId, { type: "zone_processing", zone_id: "p2-z0", zone_index: 2, processing_tool: "pdfplumber" });
    await page.getByTestId("progress-text").filter({ hasText: "Stopped at 22%" }).waitFor();

    // 3. Every page has its end state; nothing claims to be running.
    expect(await page.getByTestId("current-operation").innerText()).toBe("");
    expect(await page.getByTestId("eta").count()).toBe(0);
    const states = await Promise.all([1, 2, 3, 4].map((n) => page.getByTestId(`page-${n}`).getAttribute("data-state")));
    expect(states).toEqual(["stopped", "stopped", "not-reached", "not-reached"]);
    await page.getByRole("img", { name: "Page 4: not reached" }).waitFor();
    expect(await page.locator('rect.zone[data-status="stopped"]').count()).toBe(2);
    expect(await page.getByTestId("progress-text").innerText()).toBe(
      "Stopped at 22% · 1/3 zones done · 0 of 4 pages analysed, 2 not reached",
    );
    await page.screenshot({ path: join(ARTIFACTS, "page-cancelled.png"), fullPage: true });
    await page.close();
  }, 30_000);

  it("numbers every log line whole, and follows the newest line unless the reader scrolled up", async () => {
    // 1. A job with over a thousand events.
    const page = await signedIn("carol");
    const jobId = await upload(page, "long.pdf");
    for (let i = 0; i < 1_100; i++) bridge.publish(jobId, { type: "processing_progress", percent: i / 11 });
    const log = page.getByTestId("event-log");
    await log.locator("li").last().filter({ hasText: "100%" }).waitFor();

    // 2. The largest number ("1101.") fits in the room the list gives its numbers.
    const fit = await log.evaluate((ol: HTMLOListElement) => {
      const items = ol.querySelectorAll("li");
      const last = items[items.length - 1]!;
      const context = document.createElement("canvas").getContext("2d")!;
      context.font = getComputedStyle(last).font;
      return {
        number: `${ol.start + items.length - 1}.`,
        needed: context.measureText(`${ol.start + items.length - 1}. `).width,
        room: parseFloat(getComputedStyle(ol).paddingLeft),
      };
    });
    expect(fit.number).toBe("1101.");
    expect(fit.needed).toBeLessThanOrEqual(fit.room);

    // 3. It shows the newest line; scrolled up, it stays put; back at the bottom, it follows.
    const atBottom = () => log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight <= 8);
    expect(await atBottom()).toBe(true);
    await log.evaluate((el) => el.scrollTo({ top: 100 }));
    bridge.publish(jobId, { type: "processing_progress", percent: 100, current_operation: "one more" });
    await log.locator("li").last().filter({ hasText: "one more" }).waitFor();
    expect(await log.evaluate((el) => el.scrollTop)).toBe(100);
    await log.evaluate((el) => el.scrollTo({ top: el.scrollHeight }));
    bridge.publish(jobId, { type: "processing_progress", percent: 100, current_operation: "and another" });
    await log.locator("li").last().filter({ hasText: "and another" }).waitFor();
    await expect.poll(atBottom, { timeout: TIMEOUT }).toBe(true);
    await page.close();
  }, 30_000);

  it("lists one export per format, newest first-class, named Markdown everywhere", async () => {
    const page = await signedIn("dave");
    const jobId = await upload(page, "notes.pdf");
    bridge.publish(jobId, { type: "processing_completed", result_summary: "done" });
    const markdown = page.getByRole("button", { name: "Export Markdown" });
    await markdown.click();
    await page.getByRole("button", { name: new RegExp(`^Download ${jobId}-\\d+\\.md$`) }).waitFor();
    const firstName = await page.getByTestId("exports").getByRole("button").innerText();
    await markdown.click();
    await expect.poll(() => page.getByTestId("exports").getByRole("button").innerText(), { timeout: TIMEOUT }).not.toBe(firstName);
    expect(await page.getByTestId("exports").locator("li").allInnerTexts()).toEqual([expect.stringMatching(/^Markdown Download /)]);
    const lines = await texts(page, '[data-testid="event-log"] li');
    expect(lines.filter((l) => l.includes("Export Markdown ready"))).toHaveLength(2);
    expect(lines.join("\n")).not.toMatch(/markdown|MARKDOWN/);
    await page.close();
  }, 30_000);

  it("serves a favicon, and the page requests nothing that is not there", async () => {
    const page = await browser.newPage();
    const missing: string[] = [];
    page.on("response", (r) => {
      if (r.status() === 404) missing.push(r.url());
    });
    await page.goto(base);
    await page.getByLabel("User name").waitFor();
    const icon = await page.request.get(`${base}/favicon.ico`);
    expect([icon.status(), icon.headers()["content-type"]]).toEqual([200, "image/x-icon"]);
    expect((await icon.body()).subarray(0, 4)).toEqual(Buffer.from([0, 0, 1, 0])); // an ICO header
    const linked = await page.locator('link[rel="icon"]').evaluateAll((ls) => ls.map((l) => (l as HTMLLinkElement).href));
    for (const href of linked) expect((await page.request.get(href)).status()).toBe(200);
    expect(missing).toEqual([]);
    expect(harness.notFound).toEqual([]);
    await page.close();
  }, 30_000);
});
