/** The demo web app's REST API (same origin). Every call but `fetchToken` needs the token. */
import type { ExportFormat, JobSnapshot } from "../generated/events";

/** A failed API call: HTTP status, the server's message and its stable reason. */
export class ApiError extends Error {
  readonly status: number;
  /** The server's `X-Error-Code` (e.g. `not_ready`), or `null` when it sent none. */
  readonly code: string | null;
  constructor(status: number, message: string, code: string | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
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
    throw new ApiError(response.status, message, response.headers.get("X-Error-Code"));
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

/** What was extracted from one zone (`ZoneResult` in tasks/pdf/result.py). */
export interface ZoneContent {
  zone_id: string;
  index: number;
  page: number;
  /** `text`, `table`, `figure`, or `page` for a page that could not be parsed. */
  kind: string;
  /** x0, top, x1, bottom in PDF points from the page's top-left corner. */
  bbox: [number, number, number, number];
  status: "completed" | "failed";
  tool: string;
  /** 0–1. */
  confidence: number | null;
  duration_ms: number;
  error: string | null;
  /** The zone's whole text (a table's or figure's too, when it has one). */
  text: string | null;
  /** A table's rows, first row first. */
  rows: string[][] | null;
  /** A figure's size on the page (points) and of its image (pixels). */
  figure: { width: number; height: number; pixel_width: number | null; pixel_height: number | null } | null;
  /** What a reader should know about this zone's output. */
  notes: string[];
}

/**
 * One zone's extracted content. Rejects with an `ApiError` whose `code` is `not_ready` until the
 * zone's page has finished (retry later), `not_found` for a zone the job does not have.
 */
export async function fetchZoneContent(
  token: string,
  jobId: string,
  zoneId: string,
  signal?: AbortSignal,
): Promise<ZoneContent> {
  return call<ZoneContent>(`/api/jobs/${encodeURIComponent(jobId)}/zones/${encodeURIComponent(zoneId)}`, {
    token,
    signal,
  });
}

/**
 * A page's small image, or `null` when it has none (the worker draws each page before declaring
 * it, so a declared page without an image never gets one). Other failures reject.
 */
export async function fetchPageImage(
  token: string,
  jobId: string,
  page: number,
  signal?: AbortSignal,
): Promise<Blob | null> {
  const response = await fetch(`/api/jobs/${encodeURIComponent(jobId)}/pages/${page}/image`, {
    headers: { Authorization: `Bearer ${token}` },
    signal,
  });
  if (response.status === 404) return null;
  if (!response.ok) throw new ApiError(response.status, `page image: ${response.status}`);
  return response.blob();
}

/** Same-origin WebSocket URL of the bridge. */
export function bridgeUrl(): string {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws`;
}
