/** The pure job-state reducer: plain values, no I/O. */
import { describe, expect, it } from "vitest";
import {
  applyEvent,
  emptyJobState,
  etaRemaining,
  fromSnapshot,
  isFinished,
  zonesInOrder,
  type JobState,
} from "../src/client/index";
import type { ProgressEvent } from "../src/generated/events";
import { eventFrom, makeSnapshot, makeZoneInfo } from "./factories";
import { ProtocolServer, type EventBody } from "./protocolServer";

let seq = 0;
function ev(body: EventBody, jobId = "job"): ProgressEvent {
  seq += 1;
  return eventFrom({ ...body, job_id: jobId, id: `1000-${seq}`, epoch: "e1", ts: 100 + seq });
}

function run(events: ProgressEvent[], jobId = "job"): JobState {
  return events.reduce(applyEvent, emptyJobState(jobId));
}

const declaredBody: EventBody = {
  type: "zones_declared",
  zones: [
    { zone_id: "t1", index: 1, page: 1, kind: "table", bbox: [10, 20, 300, 400] },
    { zone_id: "p1", index: 0, page: 1, kind: "text", bbox: [10, 0, 300, 18] },
    makeZoneInfo({ zone_id: "p2", index: 2, page: 2, kind: "text" }),
  ],
  pages: [
    { number: 2, width: 612, height: 792 },
    { number: 1, width: 612, height: 792 },
  ],
  zones_total: 3,
};
const declared = ev(declaredBody);

describe("applyEvent", () => {
  it("walks a job from queued to completed", () => {
    const state = run([
      ev({ type: "processing_queued", task_name: "pdf.process" }),
      ev({ type: "processing_started", attempt: 1, worker: "w1" }),
      declared,
      ev({ type: "zone_processing", zone_id: "p1", zone_index: 0, processing_tool: "pdfplumber" }),
      ev({ type: "processing_progress", percent: 20, current_operation: "Reading page 1", eta_s: 8, zones_completed: 0, zones_total: 3 }),
      ev({ type: "zone_completed", zone_id: "p1", zone_index: 0, processing_tool: "pdfplumber", confidence: 0.9, duration_ms: 12 }),
      ev({ type: "zone_completed", zone_id: "t1", zone_index: 1, processing_tool: "camelot", status: "failed", error: "no grid" }),
      ev({ type: "processing_completed", result_summary: "3 zones" }),
    ]);
    expect(state.status).toBe("completed");
    expect(isFinished(state)).toBe(true);
    expect(state.taskName).toBe("pdf.process");
    expect(state.attempt).toBe(1);
    expect(state.percent).toBe(100);
    expect(state.etaS).toBe(0);
    expect(state.currentOperation).toBeNull();
    expect(state.currentZone).toBeNull(); // The progress event (no current_zone) cleared it, as in the snapshot.
    expect(state.zonesTotal).toBe(3);
    expect(state.pages.map((p) => p.number)).toEqual([1, 2]);
    expect(zonesInOrder(state).map((z) => [z.zone_id, z.status])).toEqual([
      ["p1", "completed"],
      ["t1", "failed"],
      ["p2", "pending"],
    ]);
    expect(state.zones.p1).toMatchObject({ processing_tool: "pdfplumber", confidence: 0.9, duration_ms: 12, bbox: [10, 0, 300, 18] });
    expect(state.zones.t1).toMatchObject({ error: "no grid", kind: "table" });
    expect(state.resultSummary).toBe("3 zones");
    expect(state.lastId).toBe(`1000-${seq}`);
  });

  it("keeps the terminal status and reports failures", () => {
    const failed = run([
      ev({ type: "processing_started" }),
      ev({ type: "processing_failed", error_type: "PdfError", error_message: "encrypted", lost: true }),
      ev({ type: "processing_started", attempt: 2 }),
    ]);
    expect(failed.status).toBe("failed");
    expect(failed.error).toEqual({ type: "PdfError", message: "encrypted", lost: true });
    const cancelled = run([ev({ type: "processing_cancelled", reason: "user" })]);
    expect(cancelled.status).toBe("cancelled");
    expect(cancelled.error).toEqual({ type: "cancelled", message: "user", lost: false });
  });

  it("counts a retry as the attempt that failed, not as an end", () => {
    const state = run([
      ev({ type: "processing_started", attempt: 1 }),
      ev({ type: "processing_retrying", attempt: 2, reason: "timeout", countdown_s: 1 }),
    ]);
    expect(state.status).toBe("retrying");
    expect(state.attempt).toBe(1);
    expect(isFinished(state)).toBe(false);
  });

  it("tracks exports", () => {
    const base = { export_id: "x1", format: "csv" } as const;
    const started = run([ev({ type: "export_started", ...base }), ev({ type: "export_progress", ...base, percent: 40 })]);
    expect(started.exports.x1).toMatchObject({ status: "started", percent: 40 });
    const done = applyEvent(started, ev({ type: "export_completed", ...base, size_bytes: 10, filename: "job.csv" }));
    expect(done.exports.x1).toMatchObject({ status: "completed", percent: 100, filename: "job.csv", size_bytes: 10 });
    const failed = applyEvent(started, ev({ type: "export_failed", ...base, error_message: "disk" }));
    expect(failed.exports.x1).toMatchObject({ status: "failed", error_message: "disk" });
  });

  it("ignores events of another job and does not mutate its input", () => {
    const state = emptyJobState("job");
    const frozen = JSON.stringify(state);
    expect(applyEvent(state, ev({ type: "processing_started" }, "other"))).toBe(state);
    applyEvent(state, declared);
    expect(JSON.stringify(state)).toBe(frozen);
  });

  it("counts the ETA down from when it was stated", () => {
    const state = run([ev({ type: "processing_progress", percent: 50, eta_s: 10 })]);
    const statedAt = state.etaTs!;
    expect(etaRemaining(state, statedAt * 1000)).toBe(10);
    expect(etaRemaining(state, (statedAt + 4) * 1000)).toBeCloseTo(6);
    expect(etaRemaining(state, (statedAt + 40) * 1000)).toBe(0);
    expect(etaRemaining(emptyJobState("job"), 0)).toBeNull();
  });
});

describe("fromSnapshot", () => {
  it("reads a snapshot that has only its defaults", () => {
    const snap = makeSnapshot({ job_id: "j", epoch: "e", last_id: "1-0" });
    const state = fromSnapshot(snap);
    expect(state).toMatchObject({ jobId: "j", epoch: "e", lastId: "1-0", status: "queued", percent: 0, zones: {}, pages: [] });
  });

  it("keeps no current operation after a cancel, while late zones and percent still count", () => {
    // 1. A split job runs; the cancel lands while a part is on zone p1.
    const state = run([
      ev({ type: "processing_started", attempt: 1 }),
      declared,
      ev({ type: "zone_processing", zone_id: "p1", zone_index: 0, processing_tool: "pdfplumber" }),
      ev({ type: "processing_progress", percent: 20, current_operation: "Extracting text p1", eta_s: 9 }),
      ev({ type: "processing_cancelled", reason: "Cancelled by alice." }),
      // 2. The part notices only at its next check: it finishes p1, starts t1, reports progress.
      ev({ type: "zone_completed", zone_id: "p1", zone_index: 0, processing_tool: "pdfplumber" }),
      ev({ type: "zone_processing", zone_id: "t1", zone_index: 1, processing_tool: "camelot" }),
      ev({ type: "processing_progress", percent: 30, current_operation: "Extracting table t1", current_zone: "t1", eta_s: 4, zones_completed: 1 }),
    ]);
    // 3. The job is cancelled and doing nothing; what the part did is kept.
    expect(state.status).toBe("cancelled");
    expect([state.currentOperation, state.currentZone, state.etaS]).toEqual([null, null, null]);
    expect([state.percent, state.zonesCompleted]).toEqual([30, 1]);
    expect(state.zones.p1?.status).toBe("completed");
    expect(state.zones.t1?.status).toBe("processing");
  });

  it("clears a terminal snapshot's late operation the same way", () => {
    const snap = makeSnapshot({
      job_id: "job",
      epoch: "e1",
      last_id: "1-1",
      status: "cancelled",
      percent: 28,
      current_operation: "Finished page 60/216",
      current_zone: "p60-z5",
      eta_s: 12,
    });
    expect(fromSnapshot(snap)).toMatchObject({ currentOperation: null, currentZone: null, etaS: null, percent: 28 });
    expect(fromSnapshot({ ...snap, status: "completed", eta_s: null })).toMatchObject({ currentOperation: null, etaS: 0 });
    expect(fromSnapshot({ ...snap, status: "started" })).toMatchObject({ currentOperation: "Finished page 60/216", etaS: 12 });
  });

  it("gives the same picture as applying every event (as the server's snapshot does)", async () => {
    // The test server computes snapshots on its own; replaying its stream through the reducer
    // must agree with them on everything a view shows.
    const server = await ProtocolServer.start();
    try {
      server.createJob("j1");
      const bodies: EventBody[] = [
        { type: "processing_queued", task_name: "pdf" },
        { type: "processing_started", attempt: 1 },
        declaredBody,
        { type: "zone_processing", zone_id: "p1", zone_index: 0, processing_tool: "ocr" },
        { type: "zone_completed", zone_id: "p1", zone_index: 0, processing_tool: "ocr", confidence: 0.5 },
        { type: "zone_processing", zone_id: "t1", zone_index: 1, processing_tool: "tab" },
        { type: "processing_progress", percent: 66, current_operation: "tables", eta_s: 3, zones_completed: 1 },
      ];
      const events = bodies.map((b) => server.publish("j1", b));
      const replayed = run(events, "j1");
      const snap = fromSnapshot(server.snapshot("j1"));
      const view = (s: JobState) => ({
        status: s.status,
        attempt: s.attempt,
        percent: s.percent,
        currentOperation: s.currentOperation,
        currentZone: s.currentZone,
        zonesCompleted: s.zonesCompleted,
        zonesTotal: s.zonesTotal,
        etaS: s.etaS,
        epoch: s.epoch,
        lastId: s.lastId,
        zones: zonesInOrder(s),
        pages: s.pages,
      });
      expect(view(replayed)).toEqual(view(snap));
      // And after a cancel with late news from a part, both ways agree again.
      const late = [
        server.publish("j1", { type: "processing_cancelled", reason: "stop" }),
        server.publish("j1", { type: "zone_completed", zone_id: "t1", zone_index: 1, processing_tool: "tab" }),
        server.publish("j1", { type: "processing_progress", percent: 70, current_operation: "p2", current_zone: "p2" }),
      ];
      expect(view(run([...events, ...late], "j1"))).toEqual(view(fromSnapshot(server.snapshot("j1"))));
    } finally {
      await server.stop();
    }
  });
});
