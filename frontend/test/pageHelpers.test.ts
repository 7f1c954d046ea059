/** The page's pure helpers: pace ETA, job names and upload times, exports per format, the log. */
import { describe, expect, it } from "vitest";
import { emptyJobState, type ExportView, type JobState } from "../src/client/index";
import { isAtBottom } from "../src/page/components/EventLog";
import { latestExports } from "../src/page/components/Exports";
import { describeEvent, formatUploadTime } from "../src/page/components/format";
import { listedJobs } from "../src/page/components/JobList";
import { MIN_PACE_SPAN_S, PaceEstimator, PACE_WINDOW_S } from "../src/page/eta";
import { makeEvent } from "./factories";

describe("PaceEstimator", () => {
  it("estimates nothing until the samples span a few seconds, then the time left at that pace", () => {
    const pace = new PaceEstimator();
    pace.observe(1000, 0);
    pace.observe(1000 + MIN_PACE_SPAN_S - 1, 2);
    expect(pace.estimate()).toBeNull();
    pace.observe(1010, 10); // 1 % per second
    expect(pace.estimate()).toEqual({ etaS: 90, etaTs: 1010, estimated: true });
  });

  it("follows a change of pace within its window, and starts over when the percent goes back", () => {
    const pace = new PaceEstimator();
    for (let t = 0; t <= 100; t += 10) pace.observe(t, t / 10); // 0.1 %/s for 100 s
    for (let t = 110; t <= 100 + PACE_WINDOW_S; t += 10) pace.observe(t, 10 + (t - 100)); // then 1 %/s
    expect(pace.estimate()!.etaS).toBeCloseTo((100 - 70) / 1, 5);
    pace.observe(200, 5); // A new attempt: old samples say nothing about it.
    expect(pace.estimate()).toBeNull();
  });

  it("gives no estimate without progress or once at 100 %", () => {
    const still = new PaceEstimator();
    still.observe(0, 30);
    still.observe(20, 30);
    expect(still.estimate()).toBeNull();
    const full = new PaceEstimator();
    full.observe(0, 50);
    full.observe(10, 100);
    expect(full.estimate()).toBeNull();
  });
});

function job(id: string, name: string, createdTs: number): JobState {
  return { ...emptyJobState(id), documentId: name, createdTs };
}

describe("the job list", () => {
  it("numbers later uploads of the same file, newest first", () => {
    const jobs = [job("a", "report.pdf", 100), job("b", "other.pdf", 150), job("c", "report.pdf", 200)];
    expect(listedJobs(jobs).map((j) => [j.job.jobId, j.name])).toEqual([
      ["c", "report.pdf (2)"],
      ["b", "other.pdf"],
      ["a", "report.pdf"],
    ]);
  });

  it("shows the upload time to the second today, with the date on other days", () => {
    const now = new Date(2026, 11, 6, 15, 0, 0).getTime();
    expect(formatUploadTime(new Date(2026, 11, 6, 14, 3, 7).getTime() / 1000, now)).toBe("14:03:07");
    expect(formatUploadTime(new Date(2026, 11, 5, 9, 5, 0).getTime() / 1000, now)).toBe("5 Dec 09:05");
  });
});

function exp(id: string, format: ExportView["format"], status: string): ExportView {
  return { export_id: id, format, status, percent: 0, size_bytes: null, filename: null, error_message: null };
}

describe("exports", () => {
  it("shows one entry per format, the newest, in the offered order", () => {
    const exports = { a: exp("a", "csv", "completed"), b: exp("b", "markdown", "completed"), c: exp("c", "csv", "started") };
    expect(latestExports({ exports }).map((x) => x.export_id)).toEqual(["b", "c"]);
  });

  it("are named Markdown in the log as on the buttons", () => {
    const base = { job_id: "j", export_id: "x", format: "markdown" } as const;
    expect(describeEvent(makeEvent("export_started", base))).toBe("Export Markdown started");
    expect(describeEvent(makeEvent("export_completed", { ...base, size_bytes: 1, filename: "j.md" }))).toBe(
      "Export Markdown ready: j.md",
    );
  });
});

describe("the event log", () => {
  it("follows the newest line only while the reader is at the bottom", () => {
    expect(isAtBottom({ scrollTop: 700, clientHeight: 300, scrollHeight: 1000 })).toBe(true);
    expect(isAtBottom({ scrollTop: 695, clientHeight: 300, scrollHeight: 1000 })).toBe(true);
    expect(isAtBottom({ scrollTop: 400, clientHeight: 300, scrollHeight: 1000 })).toBe(false);
  });
});
