// @vitest-environment happy-dom
/**
 * The job page's job view under a burst of events, as a big job produces them (120 pages, 424
 * zones, ~1,500 events): React must render a handful of times, not once per event, and the
 * event log must hold each event once, in order.
 */
import { act, cleanup, fireEvent, render, screen, waitFor as rtlWaitFor, within } from "@testing-library/react";
import { Profiler } from "react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ProgressClient, WebSocketLike } from "../src/client/index";
import { JobView } from "../src/page/components/JobView";
import { clientFor, NodeWebSocket, TIMEOUT } from "./helpers";
import { ProtocolServer } from "./protocolServer";

/**
 * `ws`'s WebSocket, delivering every frame in a task of its own as a browser does (Node's `ws`
 * hands a whole TCP chunk of frames over in one go, which hides per-frame rendering).
 */
class TaskPerFrameWebSocket implements WebSocketLike {
  onopen: WebSocketLike["onopen"] = null;
  onmessage: WebSocketLike["onmessage"] = null;
  onclose: WebSocketLike["onclose"] = null;
  onerror: WebSocketLike["onerror"] = null;
  private readonly ws: WebSocketLike;

  constructor(url: string, protocols?: string[]) {
    this.ws = new NodeWebSocket(url, protocols);
    this.ws.onopen = (ev) => setTimeout(() => this.onopen?.(ev), 0);
    this.ws.onmessage = (ev) => setTimeout(() => this.onmessage?.(ev), 0);
    this.ws.onclose = (ev) => setTimeout(() => this.onclose?.(ev), 0);
    this.ws.onerror = (ev) => setTimeout(() => this.onerror?.(ev), 0);
  }

  get protocol(): string {
    return this.ws.protocol;
  }

  send(data: string): void {
    this.ws.send(data);
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
}

const PAGES = 120;
const ZONES = 424;
/** Extra progress events, for as many events in all as the measured job had (1,516). */
const EXTRA_PROGRESS = 241;

let server: ProtocolServer;
let client: ProgressClient;

beforeEach(async () => {
  server = await ProtocolServer.start();
  client = clientFor(server, { WebSocket: TaskPerFrameWebSocket });
});

afterEach(async () => {
  cleanup();
  client.close();
  await server.stop();
});

const until = (check: () => void) => rtlWaitFor(check, { timeout: 3 * TIMEOUT });

/** Publish a whole 120-page job at once; returns the stream ids in order. */
function publishBigJob(jobId: string): string[] {
  const ids: string[] = [];
  const zones = Array.from({ length: ZONES }, (_, i) => ({
    zone_id: `z${i}`,
    index: i,
    page: (i % PAGES) + 1,
    kind: "text",
    bbox: [50, 60 + Math.floor(i / PAGES) * 150, 560, 200 + Math.floor(i / PAGES) * 150] as [
      number,
      number,
      number,
      number,
    ],
  }));
  const pages = Array.from({ length: PAGES }, (_, i) => ({ number: i + 1, width: 612, height: 792 }));
  const publish = (body: Parameters<ProtocolServer["publish"]>[1]) => ids.push(server.publish(jobId, body).id!);
  publish({ type: "processing_started", attempt: 1 });
  publish({ type: "zones_declared", zones, pages, zones_total: ZONES });
  for (let i = 0; i < ZONES; i++) {
    publish({ type: "zone_processing", zone_id: `z${i}`, zone_index: i, processing_tool: "pdfplumber" });
    publish({
      type: "zone_completed",
      zone_id: `z${i}`,
      zone_index: i,
      processing_tool: "pdfplumber",
      confidence: 0.9,
      duration_ms: 3,
    });
    if (i < EXTRA_PROGRESS) {
      publish({ type: "processing_progress", percent: (i / ZONES) * 100, current_operation: `Reading zone ${i + 1}` });
    }
    publish({
      type: "processing_progress",
      percent: ((i + 1) / ZONES) * 100,
      current_operation: `Zone ${i + 1} of ${ZONES}`,
      zones_completed: i + 1,
      zones_total: ZONES,
    });
  }
  publish({ type: "processing_completed", result_summary: `${PAGES} pages, ${ZONES} zones` });
  return ids;
}

describe("JobView under a burst of events", () => {
  it("renders a few times for 1,500 events, and logs each event once, in order", async () => {
    server.createJob("big");
    const queued = server.publish("big", { type: "processing_queued", task_name: "tasks.process_pdf" }).id!;
    let commits = 0;
    render(
      <Profiler id="job" onRender={() => (commits += 1)}>
        <JobView client={client} jobId="big" token={() => "t"} />
      </Profiler>,
    );
    act(() => client.connect());
    await until(() => expect(screen.getByTestId("job-status").textContent).toBe("Queued"));
    // The snapshot's line, then nothing more until the burst.
    await until(() => expect(screen.getByTestId("event-log").querySelectorAll("li")).toHaveLength(1));

    commits = 0;
    const ids = publishBigJob("big");
    expect(ids.length).toBe(1_516);
    await until(() => expect(screen.getByTestId("job-status").textContent).toBe("Completed"));
    await new Promise((r) => setTimeout(r, 100)); // Anything still queued gets its chance.
    expect(commits, `${commits} renders for ${ids.length} events`).toBeLessThanOrEqual(5);

    // The end state is complete.
    expect(screen.getByTestId("progress-text").textContent).toContain(`100% · ${ZONES}/${ZONES} zones`);
    expect(document.querySelectorAll('rect.zone[data-status="completed"]')).toHaveLength(ZONES);
    expect(screen.getByRole("group", { name: "Page 1: 4 of 4 zones done" })).toBeTruthy();
    expect(screen.getByRole("group", { name: `Page ${PAGES}: 3 of 3 zones done` })).toBeTruthy();

    // The log: the newest lines are shown, each once, in stream order; the rest is one click away.
    const log = screen.getByTestId("event-log");
    const keys = () => [...log.querySelectorAll("li")].map((li) => li.getAttribute("data-key"));
    const all = [`snapshot-${server.snapshot("big").epoch}-${queued}`, ...ids];
    const shown = keys();
    expect(shown.length).toBeLessThanOrEqual(500);
    expect(shown).toEqual(all.slice(-shown.length));
    const hidden = all.length - shown.length;
    expect(screen.getByText(`${hidden} earlier lines hidden.`)).toBeTruthy();
    expect(log.getAttribute("start")).toBe(String(hidden + 1));
    fireEvent.click(screen.getByRole("button", { name: "Show all" }));
    expect(keys()).toEqual(all);
    expect(within(log).getAllByText(/Zone z7 done/)).toHaveLength(1);
  });

  it("renders the zone table's rows only while it is open", async () => {
    server.createJob("big");
    publishBigJob("big");
    render(<JobView client={client} jobId="big" token={() => "t"} />);
    act(() => client.connect());
    await until(() => expect(screen.getByTestId("job-status").textContent).toBe("Completed"));
    const summary = screen.getByText(`Zones as a table (${ZONES})`);
    const table = summary.closest("details")!;
    expect(table.querySelectorAll("tbody tr")).toHaveLength(0);
    act(() => fireEvent.click(summary));
    await until(() => expect(table.querySelectorAll("tbody tr")).toHaveLength(ZONES));
    expect(table.querySelector('tbody tr[data-status="completed"]')?.textContent).toContain("z0");
    act(() => fireEvent.click(summary));
    await until(() => expect(table.querySelectorAll("tbody tr")).toHaveLength(0));
  });
});
