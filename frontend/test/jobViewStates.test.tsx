// @vitest-environment happy-dom
/**
 * The job view through a job's life, against the in-process server: queued and starting states,
 * the page-count denominator, an ETA for a job whose events carry none, the final picture after a
 * cancel, one export entry per format, and room for the log's numbers.
 */
import { act, cleanup, render, screen, waitFor as rtlWaitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ProgressClient } from "../src/client/index";
import { JobView } from "../src/page/components/JobView";
import { forgetUploads, rememberUpload } from "../src/page/uploads";
import { clientFor, TIMEOUT } from "./helpers";
import { ProtocolServer, type EventBody } from "./protocolServer";

let server: ProtocolServer;
let client: ProgressClient;

beforeEach(async () => {
  server = await ProtocolServer.start();
  client = clientFor(server);
});

afterEach(async () => {
  cleanup();
  forgetUploads();
  client.close();
  await server.stop();
});

const until = (check: () => void) => rtlWaitFor(check, { timeout: TIMEOUT });
const text = (id: string) => screen.getByTestId(id).textContent ?? "";

function declarePage(n: number, zones: number): EventBody {
  return {
    type: "zones_declared",
    zones: Array.from({ length: zones }, (_, i) => ({
      zone_id: `p${n}-z${i}`,
      index: n * 10 + i,
      page: n,
      kind: "text",
      bbox: [50, 60 + i * 100, 500, 140 + i * 100] as [number, number, number, number],
    })),
    pages: [{ number: n, width: 612, height: 792 }],
  };
}

function zone(n: number, i: number): EventBody[] {
  const z = { zone_id: `p${n}-z${i}`, zone_index: n * 10 + i, processing_tool: "pdfplumber" };
  return [{ type: "zone_processing", ...z }, { type: "zone_completed", ...z }];
}

function show(jobId: string): void {
  render(<JobView client={client} jobId={jobId} token={() => "t"} />);
  act(() => client.connect());
}

describe("JobView", () => {
  it("says queued, then starting, with an indeterminate bar, before any measured progress", async () => {
    server.createJob("j");
    server.publish("j", { type: "processing_queued", task_name: "pdf" });
    rememberUpload("j", { pages: 3, name: "a.pdf" });
    show("j");
    await until(() => expect(text("progress-text")).toBe("Queued — waiting for a worker · 3 pages to analyse"));
    const bar = screen.getByRole("progressbar", { name: "Job progress" });
    expect(bar.hasAttribute("value")).toBe(false);
    expect(text("current-operation")).toBe("Waiting for a worker…");
    server.publish("j", { type: "processing_started", attempt: 1 });
    await until(() => expect(text("progress-text")).toBe("Starting — reading the document · 3 pages to analyse"));
    expect(bar.hasAttribute("value")).toBe(false);
    // The first declared page makes it a measured run.
    server.publish("j", declarePage(1, 2));
    await until(() => expect(text("progress-text")).toBe("0% · 0/2 zones so far · 0 of 3 pages analysed"));
    expect(bar.getAttribute("value")).toBe("0");
  });

  it("counts pages of the uploaded total while zones are declared page by page", async () => {
    server.createJob("j");
    rememberUpload("j", { pages: 3, name: "a.pdf" });
    for (const body of [{ type: "processing_started", attempt: 1 } as const, declarePage(1, 2), ...zone(1, 0), ...zone(1, 1), declarePage(3, 1)]) {
      server.publish("j", body);
    }
    server.publish("j", { type: "processing_progress", percent: 40, zones_completed: 2, zones_total: 3 });
    show("j");
    await until(() => expect(text("progress-text")).toBe("40% · 2/3 zones so far · 1 of 3 pages analysed"));
    // Page 2 is drawn as waiting, not left out.
    expect(screen.getByTestId("page-2").getAttribute("data-state")).toBe("waiting");
    server.publish("j", declarePage(2, 1));
    await until(() => expect(text("progress-text")).toBe("40% · 2/4 zones · 1 of 3 pages analysed"));
  });

  it("shows an ETA for a split job whose events carry none, from the job's own pace", async () => {
    server.createJob("big");
    server.publish("big", { type: "processing_started", attempt: 1 });
    show("big");
    await until(() => expect(text("progress-text")).toContain("Starting"));
    // A part reports progress every second, 2 % at a time, with eta_s null (as the store's sums do).
    for (let i = 1; i <= 5; i++) {
      server.advance(1);
      server.publish("big", { type: "processing_progress", percent: 2 * i, current_operation: `Extracting text p${i}-z1` });
    }
    await until(() => expect(screen.getByTestId("eta").textContent).toBe(" · about 45 s left"));
    expect(screen.getByTestId("eta").getAttribute("data-estimated")).toBe("true");
    // A worker ETA, when one comes, is shown as it is.
    server.advance(1);
    server.publish("big", { type: "processing_progress", percent: 12, eta_s: 300 });
    await until(() => expect(screen.getByTestId("eta").textContent).toBe(" · about 5 min left"));
    expect(screen.getByTestId("eta").getAttribute("data-estimated")).toBe("false");
  });

  it("after a cancel: no current operation, unfinished zones not processed, later pages not reached", async () => {
    server.createJob("j");
    rememberUpload("j", { pages: 4, name: "a.pdf" });
    for (const body of [{ type: "processing_started", attempt: 1 } as const, declarePage(1, 1), ...zone(1, 0), declarePage(2, 2), zone(2, 0)[0]!]) {
      server.publish("j", body);
    }
    server.publish("j", { type: "processing_progress", percent: 30, current_operation: "Extracting text p2-z0", zones_completed: 1, zones_total: 3 });
    show("j");
    await until(() => expect(text("current-operation")).toBe("Extracting text p2-z0"));
    // The cancel, then late news from the part that was running.
    server.publish("j", { type: "processing_cancelled", reason: "Cancelled by alice." });
    server.publish("j", { type: "processing_progress", percent: 35, current_operation: "Extracting text p2-z1", zones_completed: 1, zones_total: 3 });
    await until(() => expect(screen.getByTestId("job-status").textContent).toBe("Cancelled"));
    await until(() => expect(text("progress-text")).toBe("Stopped at 35% · 1/3 zones done · 1 of 4 pages analysed, 2 not reached"));
    expect(text("current-operation")).toBe("");
    expect(screen.queryByTestId("eta")).toBeNull();
    const states = [1, 2, 3, 4].map((n) => screen.getByTestId(`page-${n}`).getAttribute("data-state"));
    expect(states).toEqual(["analysed", "stopped", "not-reached", "not-reached"]);
    expect(screen.getByRole("img", { name: "Page 3: not reached" })).toBeTruthy();
    const statuses = [...document.querySelectorAll("rect.zone")].map((r) => r.getAttribute("data-status"));
    expect(statuses).toEqual(["completed", "stopped", "stopped"]);
  });

  it("lists one export per format, the newest, labelled as on its button", async () => {
    server.createJob("j");
    server.publish("j", { type: "processing_completed" });
    for (const [id, format, done] of [["x1", "markdown", true], ["x2", "csv", true], ["x3", "markdown", false]] as const) {
      server.publish("j", { type: "export_started", export_id: id, format });
      if (done) server.publish("j", { type: "export_completed", export_id: id, format, size_bytes: 2, filename: `${id}.out` });
    }
    show("j");
    await until(() => expect(screen.getByTestId("exports").querySelectorAll("li")).toHaveLength(2));
    const entries = [...screen.getByTestId("exports").querySelectorAll("li")];
    expect(entries.map((li) => [li.getAttribute("data-export"), li.firstElementChild?.textContent])).toEqual([
      ["x3", "Markdown"],
      ["x2", "CSV"],
    ]);
    expect(screen.getByRole("button", { name: "Export Markdown" })).toBeTruthy();
  });

  it("gives the log's numbers room for their digits", async () => {
    server.createJob("j");
    show("j");
    await until(() => expect(screen.getByTestId("event-log").querySelectorAll("li")).toHaveLength(1));
    expect(screen.getByTestId("event-log").style.getPropertyValue("--log-digits")).toBe("1");
    for (let i = 0; i < 1_000; i++) server.publish("j", { type: "processing_progress", percent: i / 10 });
    await until(() => expect(screen.getByTestId("event-log").style.getPropertyValue("--log-digits")).toBe("4"));
  });
});
