/**
 * A job's latest state computed from its events, independently of the client's reducer (a
 * subset of `progress_bridge/events/snapshot.py`), so the reducer tests compare two
 * implementations.
 */
import type { JobSnapshot, ProgressEvent, ZoneState } from "../../src/generated/events";
import { makeSnapshot, makeZoneState } from "../factories";

/** The snapshot of a job after `events` (its whole epoch, trimmed entries included). */
export function snapshotOf(
  job: { jobId: string; epoch: string; owner: string; documentId: string | null },
  events: readonly ProgressEvent[],
): JobSnapshot {
  const snap = makeSnapshot({
    job_id: job.jobId,
    epoch: job.epoch,
    last_id: events.at(-1)?.id ?? "0-0",
    owner: job.owner,
    document_id: job.documentId,
  });
  const zones = new Map<string, ZoneState>();
  const pages = new Map<number, JobSnapshot["pages"][number]>();
  // In first-event order (the store's hash keeps no order; the page relies on none after a reload).
  const exports = new Map<string, JobSnapshot["exports"][number]>();
  let terminal = false;
  const status = (s: JobSnapshot["status"]): void => {
    if (!terminal) snap.status = s;
  };
  const end = (s: JobSnapshot["status"], eta: number | null): void => {
    status(s);
    terminal = true;
    snap.eta_s = eta;
    snap.current_operation = null;
  };
  for (const e of events) {
    snap.updated_ts = e.ts;
    switch (e.type) {
      case "processing_queued":
        status("queued");
        snap.task_name = e.task_name;
        snap.created_ts = e.ts;
        break;
      case "processing_started":
        status("started");
        snap.attempt = e.attempt;
        break;
      case "processing_retrying":
        status("retrying");
        snap.attempt = e.attempt - 1;
        break;
      case "processing_progress":
        snap.percent = e.percent;
        snap.current_operation = e.current_operation;
        snap.current_zone = e.current_zone;
        snap.eta_s = e.eta_s;
        snap.zones_completed = e.zones_completed ?? snap.zones_completed;
        snap.zones_total = e.zones_total ?? snap.zones_total;
        break;
      case "zones_declared":
        for (const z of e.zones) zones.set(z.zone_id, makeZoneState({ ...zones.get(z.zone_id), ...z }));
        for (const p of e.pages) pages.set(p.number, p);
        snap.zones_total = e.zones_total ?? snap.zones_total;
        break;
      case "zone_processing": {
        const z = zones.get(e.zone_id);
        if (z) {
          const { zone_id, index, page, kind, bbox } = z;
          zones.set(e.zone_id, makeZoneState({ zone_id, index, page, kind, bbox, status: "processing", processing_tool: e.processing_tool }));
        }
        snap.current_zone = e.zone_id;
        break;
      }
      case "zone_completed": {
        const z = zones.get(e.zone_id);
        if (z) {
          const { status, processing_tool, confidence, duration_ms, error, summary } = e;
          zones.set(e.zone_id, { ...z, status, processing_tool, confidence, duration_ms, error, summary });
        }
        break;
      }
      case "processing_completed":
        end("completed", 0);
        snap.percent = 100;
        snap.result_summary = e.result_summary;
        break;
      case "processing_failed":
        end("failed", null);
        snap.error_type = e.error_type;
        snap.error_message = e.error_message;
        break;
      case "processing_cancelled":
        end("cancelled", null);
        snap.error_message = e.reason;
        break;
      case "export_started":
      case "export_progress":
      case "export_completed":
      case "export_failed": {
        const base = { export_id: e.export_id, format: e.format, size_bytes: null, filename: null, error_message: null };
        const state =
          e.type === "export_completed"
            ? { ...base, status: "completed", percent: 100, size_bytes: e.size_bytes, filename: e.filename }
            : e.type === "export_failed"
              ? { ...base, status: "failed", percent: 0, error_message: e.error_message }
              : { ...base, status: "started", percent: e.type === "export_progress" ? e.percent : 0 };
        exports.set(e.export_id, state);
        break;
      }
      default:
        e satisfies never;
    }
  }
  snap.exports = [...exports.values()];
  snap.zones = [...zones.values()].sort((a, b) => a.index - b.index);
  snap.pages = [...pages.values()].sort((a, b) => a.number - b.number);
  return snap;
}
