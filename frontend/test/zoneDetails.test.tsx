// @vitest-environment happy-dom
/**
 * The zone details panel and the zone map's zones as buttons, against a small HTTP server that
 * answers the zone and page image routes as web/jobs_api.py does (Bearer token, `X-Error-Code`,
 * `not_ready` until the zone's page has finished).
 */
import { act, cleanup, fireEvent, render, screen, waitFor as rtlWaitFor } from "@testing-library/react";
import { resolveObjectURL } from "node:buffer";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { JobState, ZoneView } from "../src/client/index";
import type { JobStatus } from "../src/generated/events";
import { fetchPageImage, fetchZoneContent, type ZoneContent } from "../src/page/api";
import { ZoneDetails, type ZoneContentLoader } from "../src/page/components/ZoneDetails";
import { ZoneMap } from "../src/page/components/ZoneMap";
import type { PageProgress } from "../src/page/jobSummary";
import { PageImages } from "../src/page/pageImages";
import { TIMEOUT } from "./helpers";

const TOKEN = "tok-alice";
const JOB = "pdf-1";

/** The web app's zone and page image routes, for one job of one user. */
class ContentServer {
  /** Zone contents by id; a zone missing here is `not_found`. */
  readonly zones = new Map<string, ZoneContent>();
  /** Answers `not_ready` this many more times per zone (its page is still being processed). */
  readonly notReady = new Map<string, number>();
  /** Page images by number; a page missing here has none (404 `not_rendered`). */
  readonly images = new Map<number, Buffer>();
  /** Every request, as "METHOD path". */
  readonly requests: string[] = [];
  /** Page image requests being answered right now, and the most at once. */
  inFlight = 0;
  maxInFlight = 0;
  /** Delay of each page image answer, in ms. */
  imageDelay = 0;

  private constructor(private readonly http: Server) {}

  static async start(): Promise<ContentServer> {
    const http = createServer();
    const server = new ContentServer(http);
    http.on("request", (req, res) => void server.handle(req, res));
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.http.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    this.requests.push(`${req.method} ${path}`);
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return error(res, 401, "unauthenticated");
    const zone = new RegExp(`^/api/jobs/${JOB}/zones/([^/]+)$`).exec(path)?.[1];
    if (zone) {
      const waits = this.notReady.get(zone) ?? 0;
      if (waits > 0) {
        this.notReady.set(zone, waits - 1);
        return error(res, 404, "not_ready", `Zone ${zone} is not ready.`);
      }
      const content = this.zones.get(zone);
      if (!content) return error(res, 404, "not_found");
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(content));
      return;
    }
    const page = new RegExp(`^/api/jobs/${JOB}/pages/(\\d+)/image$`).exec(path)?.[1];
    if (page) {
      this.inFlight += 1;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      await new Promise((r) => setTimeout(r, this.imageDelay));
      this.inFlight -= 1;
      const image = this.images.get(Number(page));
      if (!image) return error(res, 404, "not_rendered");
      res.writeHead(200, { "Content-Type": "image/jpeg" }).end(image);
      return;
    }
    error(res, 404, "not_found");
  }
}

function error(res: ServerResponse, status: number, code: string, detail = code): void {
  res.writeHead(status, { "Content-Type": "application/json", "X-Error-Code": code });
  res.end(JSON.stringify({ detail }));
}

function zoneView(overrides: Partial<ZoneView> & { zone_id: string }): ZoneView {
  return {
    index: 0,
    page: 1,
    kind: "text",
    bbox: [50, 60, 500, 120],
    status: "completed",
    processing_tool: "pdfplumber.text",
    confidence: 0.97,
    duration_ms: 4,
    error: null,
    summary: "Quarterly report: revenue grew in every…",
    ...overrides,
  };
}

function content(overrides: Partial<ZoneContent> & { zone_id: string }): ZoneContent {
  return {
    index: 0,
    page: 1,
    kind: "text",
    bbox: [50, 60, 500, 120],
    status: "completed",
    tool: "pdfplumber.text",
    confidence: 0.97,
    duration_ms: 4,
    error: null,
    text: null,
    rows: null,
    figure: null,
    notes: [],
    ...overrides,
  };
}

const FULL_TEXT =
  "Quarterly report: revenue grew in every region this quarter, and the new plant in the north\n" +
  "opened two weeks ahead of plan.";

let server: ContentServer;
const load: ZoneContentLoader = (zoneId, signal) => fetchZoneContent(TOKEN, JOB, zoneId, signal);
const until = (check: () => void) => rtlWaitFor(check, { timeout: TIMEOUT });

beforeAll(async () => {
  server = await ContentServer.start();
});

afterAll(async () => {
  await server.stop();
});

beforeEach(() => {
  // Same origin as the server, as the page is with the web app: the API's paths are relative.
  (window as unknown as { happyDOM: { setURL(url: string): void } }).happyDOM.setURL(`${server.url}/`);
  server.zones.clear();
  server.notReady.clear();
  server.images.clear();
  server.requests.length = 0;
});

afterEach(() => {
  cleanup();
});

describe("ZoneDetails", () => {
  it("shows a done zone's kind, tool and confidence, then its whole text from the web app", async () => {
    server.zones.set("p1-z1", content({ zone_id: "p1-z1", text: FULL_TEXT }));
    render(<ZoneDetails zone={zoneView({ zone_id: "p1-z1" })} load={load} jobEnded={false} onClose={() => {}} />);

    const panel = screen.getByRole("dialog", { name: "Zone p1-z1 (text)" });
    expect(panel.textContent).toContain("pdfplumber.text");
    expect(panel.textContent).toContain("97%");
    expect(panel.textContent).toContain("4 ms");
    expect(screen.getByTestId("zone-status").textContent).toBe("done");
    // The whole text, line break kept, where the event only had a one-line summary.
    await until(() => expect(screen.getByTestId("zone-text").textContent).toBe(FULL_TEXT));
    expect(screen.queryByText("Quarterly report: revenue grew in every…")).toBeNull();
    expect(server.requests).toEqual([`GET /api/jobs/${JOB}/zones/p1-z1`]);
  });

  it("retries while the zone's page is still being processed, then shows the text", async () => {
    server.zones.set("p2-z3", content({ zone_id: "p2-z3", page: 2, text: "Page 2 ends." }));
    server.notReady.set("p2-z3", 2);
    render(
      <ZoneDetails zone={zoneView({ zone_id: "p2-z3", page: 2 })} load={load} jobEnded={false} onClose={() => {}} />,
    );

    // Meanwhile: the summary the event carried, and that the rest is on its way.
    expect(screen.getByText("Quarterly report: revenue grew in every…")).toBeTruthy();
    expect(screen.getByText("Loading the extracted content…")).toBeTruthy();
    await until(() => expect(screen.getByTestId("zone-text").textContent).toBe("Page 2 ends."));
    expect(server.requests).toHaveLength(3);
  });

  it("shows a pending zone's content as soon as it completes", async () => {
    server.zones.set("p1-z2", content({ zone_id: "p1-z2", text: "Done now." }));
    const pending = zoneView({ zone_id: "p1-z2", status: "pending", processing_tool: null, confidence: null, duration_ms: null, summary: null });
    const { rerender } = render(<ZoneDetails zone={pending} load={load} jobEnded={false} onClose={() => {}} />);
    expect(screen.getByTestId("zone-status").textContent).toBe("pending");
    expect(screen.getByText("Not extracted yet: its text appears here once it is done.")).toBeTruthy();
    expect(server.requests).toEqual([]); // nothing to fetch yet

    // The zone_completed event arrives: the job state's zone changes, the panel follows.
    rerender(<ZoneDetails zone={zoneView({ zone_id: "p1-z2" })} load={load} jobEnded={false} onClose={() => {}} />);
    expect(screen.getByTestId("zone-status").textContent).toBe("done");
    await until(() => expect(screen.getByTestId("zone-text").textContent).toBe("Done now."));
  });

  it("shows a table as a table, with its first row as the header", async () => {
    const rows = [
      ["Region", "Q2", "Q3"],
      ["North", "1.2", "1.5"],
      ["South", "0.9", "1.1"],
    ];
    server.zones.set("p1-z3", content({ zone_id: "p1-z3", kind: "table", tool: "pdfplumber.table", rows, notes: ["2 cells were empty"] }));
    render(
      <ZoneDetails
        zone={zoneView({ zone_id: "p1-z3", kind: "table", processing_tool: "pdfplumber.table" })}
        load={load}
        jobEnded={false}
        onClose={() => {}}
      />,
    );
    await until(() => expect(screen.getByTestId("zone-rows")).toBeTruthy());
    const table = screen.getByTestId("zone-rows");
    const cells = (selector: string) => [...table.querySelectorAll(selector)].map((c) => c.textContent);
    expect(cells("thead th")).toEqual(["Region", "Q2", "Q3"]);
    expect([...table.querySelectorAll("tbody tr")].map((tr) => [...tr.children].map((c) => c.textContent))).toEqual(rows.slice(1));
    expect(screen.getByText("2 cells were empty")).toBeTruthy();
  });

  it("shows why a failed zone failed", async () => {
    const why = "the page cannot be read: its content nests too deeply";
    server.zones.set("p1-z4", content({ zone_id: "p1-z4", status: "failed", error: why }));
    render(
      <ZoneDetails zone={zoneView({ zone_id: "p1-z4", status: "failed", error: why, summary: null, confidence: null })} load={load} jobEnded={false} onClose={() => {}} />,
    );
    expect(screen.getByTestId("zone-status").textContent).toBe("failed");
    expect(screen.getByText(why)).toBeTruthy();
    await until(() => expect(screen.getByTestId("zone-content").getAttribute("data-state")).toBe("ready"));
  });

  it("once the job has ended, says a zone's content is not available instead of waiting for it", async () => {
    // A cancelled job: the zone completed, but its page never finished.
    server.notReady.set("p3-z1", 1_000);
    render(<ZoneDetails zone={zoneView({ zone_id: "p3-z1", page: 3 })} load={load} jobEnded={true} onClose={() => {}} />);
    await until(() => expect(screen.getByText(/The extracted content is not available/)).toBeTruthy());
    expect(server.requests).toHaveLength(1);
    // A zone the job never reached says so.
    cleanup();
    render(<ZoneDetails zone={zoneView({ zone_id: "p3-z2", status: "pending" })} load={load} jobEnded={true} onClose={() => {}} />);
    expect(screen.getByTestId("zone-status").textContent).toBe("not processed (the job ended first)");
  });

  it("takes focus when it opens and closes with Escape or its close button", () => {
    let closed = 0;
    render(<ZoneDetails zone={zoneView({ zone_id: "p1-z1", status: "processing" })} jobEnded={false} onClose={() => (closed += 1)} />);
    const panel = screen.getByRole("dialog", { name: "Zone p1-z1 (text)" });
    expect(document.activeElement).toBe(panel);
    fireEvent.keyDown(panel, { key: "Escape" });
    expect(closed).toBe(1);
    fireEvent.click(screen.getByRole("button", { name: "Close zone details" }));
    expect(closed).toBe(2);
  });
});

describe("ZoneMap's zones", () => {
  const zones: JobState["zones"] = {
    "p1-z1": zoneView({ zone_id: "p1-z1", index: 0, bbox: [50, 50, 500, 80] }),
    "p1-z2": zoneView({ zone_id: "p1-z2", index: 1, bbox: [50, 100, 500, 300], status: "processing", summary: null }),
    "p1-z3": zoneView({ zone_id: "p1-z3", index: 2, bbox: [50, 320, 500, 600], status: "pending", summary: null }),
  };
  const pages = [{ number: 1, width: 612, height: 792 }];
  const progress: PageProgress[] = [{ number: 1, state: "analysing", zones: 3, done: 1 }];
  const map = (status: JobStatus = "started", extra: Partial<Parameters<typeof ZoneMap>[0]> = {}) => (
    <ZoneMap zones={zones} pages={pages} progress={progress} status={status} loadZone={load} {...extra} />
  );
  const rect = (id: string) => document.querySelector<SVGRectElement>(`rect.zone[data-zone="${id}"]`)!;

  it("are buttons in one tab stop per page: arrows move, Enter opens, Escape closes and gives focus back", async () => {
    server.zones.set("p1-z1", content({ zone_id: "p1-z1", text: FULL_TEXT }));
    render(map());
    const page = screen.getByRole("group", { name: "Page 1: 1 of 3 zones done" });
    const buttons = [...page.querySelectorAll("rect.zone")];
    expect(buttons.map((b) => b.getAttribute("role"))).toEqual(["button", "button", "button"]);
    expect(buttons.map((b) => b.getAttribute("tabindex"))).toEqual(["0", "-1", "-1"]);
    expect(rect("p1-z2").getAttribute("aria-label")).toBe("p1-z2 (text): processing · pdfplumber.text · 97% confidence · 4 ms");

    // Arrow keys move between the page's zones; the focused one takes the tab stop.
    act(() => rect("p1-z1").focus());
    fireEvent.keyDown(rect("p1-z1"), { key: "ArrowRight" });
    expect(document.activeElement).toBe(rect("p1-z2"));
    expect(rect("p1-z2").getAttribute("tabindex")).toBe("0");
    expect(rect("p1-z1").getAttribute("tabindex")).toBe("-1");
    fireEvent.keyDown(rect("p1-z2"), { key: "ArrowLeft" });
    expect(document.activeElement).toBe(rect("p1-z1"));

    // Enter opens the focused zone's details, which take focus and load its text.
    fireEvent.keyDown(rect("p1-z1"), { key: "Enter" });
    const panel = screen.getByRole("dialog", { name: "Zone p1-z1 (text)" });
    expect(document.activeElement).toBe(panel);
    expect(rect("p1-z1").getAttribute("aria-expanded")).toBe("true");
    expect(rect("p1-z1").classList.contains("zone--selected")).toBe(true);
    await until(() => expect(screen.getByTestId("zone-text").textContent).toBe(FULL_TEXT));

    // Escape closes them; focus goes back to the zone.
    fireEvent.keyDown(panel, { key: "Escape" });
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(document.activeElement).toBe(rect("p1-z1"));
    expect(rect("p1-z1").getAttribute("aria-expanded")).toBe("false");
  });

  it("open on a click and follow the zone live", () => {
    const { rerender } = render(map());
    fireEvent.click(rect("p1-z3"));
    expect(screen.getByTestId("zone-status").textContent).toBe("pending");
    // Another click switches to that zone.
    fireEvent.click(rect("p1-z2"));
    expect(screen.getByRole("dialog").getAttribute("data-zone")).toBe("p1-z2");
    expect(screen.getByTestId("zone-status").textContent).toBe("being processed");
    // The job is cancelled: the unfinished zone is shown as not processed.
    rerender(map("cancelled"));
    expect(screen.getByTestId("zone-status").textContent).toBe("not processed (the job ended first)");
  });

  it("draw each declared page over its image once it has loaded", async () => {
    server.images.set(1, Buffer.from("a page"));
    const images = new PageImages((page, signal) => fetchPageImage(TOKEN, JOB, page, signal));
    render(map("started", { images }));
    // happy-dom has no layout, so its IntersectionObserver never reports the page in view: ask
    // for it as the observer would.
    expect(screen.getByTestId("page-1").getAttribute("data-image")).toBe("none");
    act(() => images.request(1));
    await until(() => expect(document.querySelector("image.page-image")).not.toBeNull());
    const image = document.querySelector<SVGImageElement>("image.page-image")!;
    expect(image.getAttribute("href")).toMatch(/^blob:/);
    expect([image.getAttribute("width"), image.getAttribute("height")]).toEqual(["612", "792"]);
    expect(screen.getByTestId("page-1").classList.contains("page--imaged")).toBe(true);
    // Under the zones, so that they stay clickable.
    const layers = [...image.parentElement!.children].map((e) => e.getAttribute("class")?.split(" ")[0]);
    expect(layers).toEqual(["page-outline", "page-image", "zone", "zone", "zone"]);
    images.clear();
  });
});

describe("PageImages", () => {
  it("loads a few images at a time, keeps each as an object URL, and does not ask twice for a page without one", async () => {
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) server.images.set(n, Buffer.from(`page ${n}`));
    server.imageDelay = 30;
    server.maxInFlight = 0;
    const images = new PageImages((page, signal) => fetchPageImage(TOKEN, JOB, page, signal), 3);
    let changes = 0;
    images.subscribe(() => (changes += 1));
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9]) images.request(n); // page 9 has no image
    for (const n of [1, 2, 3]) images.request(n); // already asked for: not again

    await until(() => expect([1, 2, 3, 4, 5, 6, 7, 8].every((n) => images.url(n))).toBe(true));
    await until(() => expect(images.hasNone(9)).toBe(true));
    expect(server.maxInFlight).toBe(3);
    expect(server.requests.filter((r) => r.endsWith("/image"))).toHaveLength(9);
    expect(await resolveObjectURL(images.url(4)!)?.text()).toBe("page 4");
    expect(images.url(9)).toBeNull();
    expect(changes).toBe(8); // one per image that arrived
    images.request(9);
    expect(server.requests.filter((r) => r.endsWith("/9/image"))).toHaveLength(1);

    // Cleared (the job view went away): every URL released, and the loader starts afresh.
    const url = images.url(1)!;
    images.clear();
    expect(images.url(1)).toBeNull();
    expect(resolveObjectURL(url)).toBeUndefined();
    server.imageDelay = 0;
  });
});
