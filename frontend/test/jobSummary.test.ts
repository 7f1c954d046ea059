/** The job view's summary (src/page/jobSummary.ts): phase, pages and the progress line. */
import { describe, expect, it } from "vitest";
import { applyEvent, emptyJobState, type JobState } from "../src/client/index";
import type { ProgressEvent } from "../src/generated/events";
import { summarizeJob } from "../src/page/jobSummary";
import { eventFrom } from "./factories";
import type { EventBody } from "./protocolServer";

let seq = 0;
function run(...bodies: EventBody[]): JobState {
  return bodies
    .map((b) => eventFrom({ ...b, job_id: "job", id: `1-${++seq}`, epoch: "e" }))
    .reduce<JobState>((s, e: ProgressEvent) => applyEvent(s, e), emptyJobState("job"));
}

/** Page `n`'s declaration with `zones` zones, as a part declares it. */
function page(n: number, zones: number): EventBody {
  return {
    type: "zones_declared",
    zones: Array.from({ length: zones }, (_, i) => ({ zone_id: `p${n}-z${i}`, index: n * 10 + i, page: n, kind: "text", bbox: null })),
    pages: [{ number: n, width: 612, height: 792 }],
  };
}

function done(n: number, i: number): EventBody {
  return { type: "zone_completed", zone_id: `p${n}-z${i}`, zone_index: n * 10 + i, processing_tool: "t" };
}

const queued = { type: "processing_queued", task_name: "pdf" } as const;
const started = { type: "processing_started", attempt: 1 } as const;

describe("summarizeJob", () => {
  it("says queued and starting instead of 0% · 0/0 zones", () => {
    expect(summarizeJob(run(queued), null)).toMatchObject({ phase: "queued", text: "Queued — waiting for a worker" });
    expect(summarizeJob(run(queued), 216).text).toBe("Queued — waiting for a worker · 216 pages to analyse");
    expect(summarizeJob(run(queued, started), 216)).toMatchObject({
      phase: "starting",
      text: "Starting — reading the document · 216 pages to analyse",
    });
  });

  it("keeps the page total as denominator while zones are declared page by page", () => {
    // Pages 1 and 3 are declared (two parts in parallel); one zone of page 1 is done.
    const job = run(queued, started, page(1, 2), page(3, 1), done(1, 0), {
      type: "processing_progress",
      percent: 10,
      zones_completed: 1,
      zones_total: 3,
    });
    const s = summarizeJob(job, 4);
    expect(s.text).toBe("10% · 1/3 zones so far · 0 of 4 pages analysed");
    expect(s.pages.map((p) => [p.number, p.state])).toEqual([
      [1, "analysing"],
      [2, "waiting"],
      [3, "analysing"],
      [4, "waiting"],
    ]);
    // More pages: the zone count grows, the page denominator does not; "so far" until all four.
    const later = run(queued, started, page(1, 2), page(3, 1), page(2, 1), done(1, 0), done(1, 1), done(3, 0), {
      type: "processing_progress",
      percent: 60,
      zones_completed: 3,
      zones_total: 4,
    });
    expect(summarizeJob(later, 4).text).toBe("60% · 3/4 zones so far · 2 of 4 pages analysed");
    const all = applyEvent(later, eventFrom({ ...page(4, 0), job_id: "job", id: "9-9" }));
    expect(summarizeJob(all, 4)).toMatchObject({ allDeclared: true, text: "60% · 3/4 zones · 3 of 4 pages analysed" });
    // Without the upload's page count, the pages counted so far.
    expect(summarizeJob(later, null).text).toBe("60% · 3/4 zones so far · 2 pages analysed so far");
  });

  it("ends a completed job with n/n zones and its pages", () => {
    const job = run(queued, started, page(1, 1), done(1, 0), { type: "processing_progress", percent: 99, zones_completed: 1, zones_total: 1 }, {
      type: "processing_completed",
    });
    expect(summarizeJob(job, null)).toMatchObject({ phase: "completed", total: 1, text: "100% · 1/1 zones · 1 page" });
  });

  it("shows a cancelled job's pages to the last: unfinished ones stopped, the rest not reached", () => {
    const job = run(queued, started, page(1, 1), page(2, 2), done(1, 0), done(2, 0), {
      type: "processing_progress",
      percent: 40,
      zones_completed: 2,
      zones_total: 3,
    }, { type: "processing_cancelled", reason: "Cancelled by alice." });
    const s = summarizeJob(job, 5);
    expect(s.phase).toBe("stopped");
    expect(s.pages.map((p) => p.state)).toEqual(["analysed", "stopped", "not-reached", "not-reached", "not-reached"]);
    expect(s.text).toBe("Stopped at 40% · 2/3 zones done · 1 of 5 pages analysed, 3 not reached");
    expect(summarizeJob(job, null).text).toBe("Stopped at 40% · 2/3 zones done · 1 page analysed");
  });
});
