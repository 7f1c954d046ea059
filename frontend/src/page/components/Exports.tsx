import { useState } from "react";
import type { JobState } from "../../client/index";
import type { ExportFormat } from "../../generated/events";
import { downloadExport, startExport } from "../api";

const FORMATS: { format: ExportFormat; label: string }[] = [
  { format: "json", label: "JSON" },
  { format: "markdown", label: "Markdown" },
  { format: "csv", label: "CSV" },
];

/** Start exports and download the finished ones; progress comes live from export events. */
export function Exports({ job, token }: { job: JobState; token: () => string }) {
  const [error, setError] = useState<string | null>(null);
  const exports = Object.values(job.exports);
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
        {FORMATS.map(({ format, label }) => (
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
        <ul className="exports" aria-live="polite">
          {exports.map((x) => (
            <li key={x.export_id} data-export={x.export_id} data-status={x.status}>
              <span>{x.format.toUpperCase()}</span>{" "}
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
