import type { ExportFormat, JobStatus, ProgressEvent } from "../../generated/events";

/** Export formats in the order the page offers them, with the one label each has everywhere. */
export const EXPORT_FORMATS: readonly { format: ExportFormat; label: string }[] = [
  { format: "json", label: "JSON" },
  { format: "markdown", label: "Markdown" },
  { format: "csv", label: "CSV" },
];

/** An export format as the page names it: "JSON", "Markdown", "CSV". */
export function formatLabel(format: ExportFormat): string {
  return EXPORT_FORMATS.find((f) => f.format === format)?.label ?? format;
}

/** A status as a person reads it. */
export function statusLabel(status: JobStatus): string {
  return {
    queued: "Queued",
    started: "Running",
    retrying: "Retrying",
    completed: "Completed",
    failed: "Failed",
    cancelled: "Cancelled",
  }[status];
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * When a job was uploaded, in local time: "14:03:07" today (seconds, so uploads a minute apart
 * differ), "6 Dec 14:03" on another day.
 */
export function formatUploadTime(ts: number, nowMs = Date.now()): string {
  const at = new Date(ts * 1000);
  const now = new Date(nowMs);
  const two = (n: number) => String(n).padStart(2, "0");
  const hm = `${two(at.getHours())}:${two(at.getMinutes())}`;
  const sameDay =
    at.getFullYear() === now.getFullYear() && at.getMonth() === now.getMonth() && at.getDate() === now.getDate();
  return sameDay ? `${hm}:${two(at.getSeconds())}` : `${at.getDate()} ${MONTHS[at.getMonth()]} ${hm}`;
}

/** Seconds as "1 min 5 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
}

/** One event log line. */
export function describeEvent(event: ProgressEvent): string {
  switch (event.type) {
    case "processing_queued":
      return `Queued (${event.task_name})`;
    case "processing_started":
      return `Started, attempt ${event.attempt ?? 1}${event.worker ? ` on ${event.worker}` : ""}`;
    case "processing_progress":
      return `${Math.round(event.percent)}%${event.current_operation ? ` — ${event.current_operation}` : ""}`;
    case "zones_declared":
      return `${event.zones.length} zone(s) found${event.pages?.length ? ` on ${event.pages.length} page(s)` : ""}`;
    case "zone_processing":
      return `Zone ${event.zone_id}: ${event.processing_tool}…`;
    case "zone_completed":
      return event.status === "failed"
        ? `Zone ${event.zone_id} failed${event.error ? `: ${event.error}` : ""}`
        : `Zone ${event.zone_id} done (${event.processing_tool}${
            event.confidence != null ? `, ${Math.round(event.confidence * 100)}% confidence` : ""
          })`;
    case "processing_retrying":
      return `Retrying (attempt ${event.attempt}): ${event.reason}`;
    case "processing_completed":
      return `Completed${event.result_summary ? `: ${event.result_summary}` : ""}`;
    case "processing_failed":
      return `Failed: ${event.error_type}: ${event.error_message}${event.lost ? " (worker lost)" : ""}`;
    case "processing_cancelled":
      return `Cancelled${event.reason ? `: ${event.reason}` : ""}`;
    case "export_started":
      return `Export ${formatLabel(event.format)} started`;
    case "export_progress":
      return `Export ${formatLabel(event.format)}: ${Math.round(event.percent)}%`;
    case "export_completed":
      return `Export ${formatLabel(event.format)} ready: ${event.filename}`;
    case "export_failed":
      return `Export ${formatLabel(event.format)} failed: ${event.error_message}`;
  }
}
