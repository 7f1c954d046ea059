/** The demo web app's REST API (same origin). Every call but `fetchToken` needs the token. */
import type { ExportFormat, JobSnapshot } from "../generated/events";

/** A failed API call: HTTP status and the server's message. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

async function call<T>(path: string, init: RequestInit & { token?: string } = {}): Promise<T> {
  const { token, headers, ...rest } = init;
  const response = await fetch(path, {
    ...rest,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
  });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = (await response.json()) as { detail?: unknown; message?: unknown };
      const detail = body.detail ?? body.message;
      if (detail) message = typeof detail === "string" ? detail : JSON.stringify(detail);
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(response.status, message);
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** Development sign-in stand-in: a user name in, a token out. */
export async function fetchToken(user: string): Promise<string> {
  const body = await call<{ token: string }>("/api/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user }),
  });
  return body.token;
}

/** The answer to an upload (`JobAccepted` in web/jobs_api.py). */
export interface JobAccepted {
  job_id: string;
  /** The sanitised file name. */
  display_name: string;
  /** Pages of the document. */
  pages: number;
  size_bytes: number;
}

/** Upload a PDF; returns the new job's id and what the server found in the file. */
export async function uploadPdf(token: string, file: File): Promise<JobAccepted> {
  const form = new FormData();
  form.append("file", file);
  return call<JobAccepted>("/api/jobs", { method: "POST", body: form, token });
}

/** The signed-in user's jobs. */
export async function listJobs(token: string): Promise<JobSnapshot[]> {
  const body = await call<{ jobs: JobSnapshot[] }>("/api/jobs", { token });
  return body.jobs;
}

/** Cancel a job. */
export async function cancelJob(token: string, jobId: string): Promise<void> {
  await call<unknown>(`/api/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE", token });
}

/** Start an export; its progress arrives as export events. */
export async function startExport(token: string, jobId: string, format: ExportFormat): Promise<string> {
  const body = await call<{ export_id: string }>(`/api/jobs/${encodeURIComponent(jobId)}/exports`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ format }),
    token,
  });
  return body.export_id;
}

/** Download a finished export (the request needs the token, so it goes through fetch). */
export async function downloadExport(
  token: string,
  jobId: string,
  exportId: string,
  filename: string,
): Promise<void> {
  const response = await fetch(
    `/api/jobs/${encodeURIComponent(jobId)}/exports/${encodeURIComponent(exportId)}`,
    { headers: { Authorization: `Bearer ${token}` } },
  );
  if (!response.ok) throw new ApiError(response.status, `download failed: ${response.status}`);
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Same-origin WebSocket URL of the bridge. */
export function bridgeUrl(): string {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws`;
}
