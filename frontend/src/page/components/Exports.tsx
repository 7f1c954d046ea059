import { useState } from "react";
import type { ExportView, JobState } from "../../client/index";
import { downloadExport, startExport } from "../api";
import { EXPORT_FORMATS, formatLabel } from "./format";

/**
 * The export to show per format: the newest one (the last started; exports of a job are kept in
 * the order their first event arrived, so a later export of a format replaces the earlier one).
 * After a reload the snapshot's order is all there is: it carries no time per export.
 */
export function latestExports(job: Pick<JobState, "exports">): ExportView[] {
  const byFormat = new Map<string, ExportView>();
  for (const x of Object.values(job.exports)) byFormat.set(x.format, x); // The last one wins.
  return EXPORT_FORMATS.flatMap(({ format }) => byFormat.get(format) ?? []);
}

/** Start exports and download the finished ones; progress comes live from export events. */
export function Exports({ job, token }: { job: JobState; token: () => string }) {
  const [error, setError] = useState<string | null>(null);
  const exports = latestExports(job);
  const canExport = job.status === "completed";

  async function run(action: () => Promise<unknown>) {
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }

  return (
    <div>
      <div className="button-row" role="group" aria-label="Export as">
        {EXPORT_FORMATS.map(({ format, label }) => (
          <button
            key={format}
            type="button"
            disabled={!canExport}
            onClick={() => void run(() => startExport(token(), job.jobId, format))}
          >
            Export {label}
          </button>
        ))}
      </div>
      {!canExport && <p className="hint">Exports are available once the job has completed.</p>}
      {exports.length > 0 && (
        <ul className="exports" aria-live="polite" data-testid="exports">
          {exports.map((x) => (
            <li key={x.format} data-export={x.export_id} data-format={x.format} data-status={x.status}>
              <span>{formatLabel(x.format)}</span>{" "}
              {x.status === "completed" && x.filename ? (
                <button
                  type="button"
                  onClick={() =>
                    void run(() => downloadExport(token(), job.jobId, x.export_id, x.filename ?? "export"))
                  }
                >
                  Download {x.filename}
                </button>
              ) : x.status === "failed" ? (
                <span className="error">failed: {x.error_message}</span>
              ) : (
                <span>{Math.round(x.percent)}%…</span>
              )}
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </div>
  );
}
