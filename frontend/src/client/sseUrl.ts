/**
 * How an SSE stream is asked for (docs/protocol.md, "Server-Sent Events"): the endpoint's URL,
 * the query naming the jobs or the room, the token, and the positions to resume from as the SSE
 * id the bridge itself sends (`m:<base64url of {"<job>": "<epoch>:<id>"}>`). Pure; no I/O.
 */
import { JOB_ID_PATTERN, type StreamPosition } from "./frames.js";

/**
 * Jobs per SSE stream. The bridge takes up to `MAX_ROOM_POSITIONS` (100) `job_id`s per stream,
 * but every job also puts its position into the URL: 50 keeps a full stream's URL near 8 KB,
 * within what servers and proxies accept in a request line.
 */
export const SSE_JOBS_PER_STREAM = 50;

const JOB_ID = new RegExp(JOB_ID_PATTERN);

/** Whether the bridge takes `id` as a job id (a stream naming one that is not is refused whole). */
export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

/**
 * The SSE endpoint beside a WebSocket endpoint: `ws:` → `http:`, `wss:` → `https:`, and the last
 * path segment replaced by `sse` (`wss://host/ws` → `https://host/sse`, `ws://host/api/ws` →
 * `http://host/api/sse`); query and fragment dropped.
 */
export function sseUrlFor(webSocketUrl: string): string {
  const url = new URL("sse", webSocketUrl);
  if (url.protocol === "ws:") url.protocol = "http:";
  else if (url.protocol === "wss:") url.protocol = "https:";
  url.search = "";
  url.hash = "";
  return url.toString();
}

/** What one stream watches: jobs (one or more), or one room. */
export type StreamTarget = { jobIds: readonly string[]; room?: undefined } | { room: string; jobIds?: undefined };

/** Positions as the SSE id the bridge sends for several jobs: `m:` and base64url JSON. */
export function encodePositions(positions: Readonly<Record<string, StreamPosition>>): string {
  const map: Record<string, string> = {};
  for (const [jobId, { epoch, last_id }] of Object.entries(positions)) map[jobId] = `${epoch}:${last_id}`;
  const bytes = new TextEncoder().encode(JSON.stringify(map));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return "m:" + btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The URL of one stream: `job_id` (repeated, with `presence=true`) or `room`, `token` when there is one, and
 * `last_event_id` with the positions to resume from when there are any (jobs without one get
 * their snapshot).
 */
export function streamUrl(
  endpoint: string,
  target: StreamTarget,
  positions: Readonly<Record<string, StreamPosition>>,
  token: string | null,
): string {
  const url = new URL(endpoint);
  if (target.room !== undefined) url.searchParams.set("room", target.room);
  else {
    for (const jobId of target.jobIds) url.searchParams.append("job_id", jobId);
    url.searchParams.set("presence", "true");
  }
  if (token) url.searchParams.set("token", token);
  if (Object.keys(positions).length > 0) url.searchParams.set("last_event_id", encodePositions(positions));
  return url.toString();
}
