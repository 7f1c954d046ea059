/**
 * The client against the real Python bridge (progress_bridge), when one is running:
 *
 *   PROGRESS_BRIDGE_WS_URL=ws://127.0.0.1:PORT/ws   the bridge's WebSocket endpoint
 *   PROGRESS_BRIDGE_TOKEN=<JWT for user alice>      e.g. `progress-bridge token --user alice`
 *   PROGRESS_REDIS_URL=redis://…                    the bridge's Redis (events are appended there)
 *
 * Skipped when they are not set; the in-process protocol server covers the same ground always.
 */
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ProgressClient } from "../src/client/index";
import type { ProgressEvent } from "../src/generated/events";
import { NodeWebSocket, waitFor } from "./helpers";
import { ProgressClient as Client } from "../src/client/index";

const url = process.env.PROGRESS_BRIDGE_WS_URL;
const token = process.env.PROGRESS_BRIDGE_TOKEN;
const enabled = !!(url && token && process.env.PROGRESS_REDIS_URL);
const ROOT = resolve(import.meta.dirname, "../..");
const PYTHON = process.env.PROGRESS_PYTHON ?? resolve(ROOT, ".venv/bin/python");

const APPEND = `
import sys
from progress_bridge.events import parse_event
from progress_bridge.streams import EventStore
from progress_bridge.config import Settings
s = Settings()
store = EventStore.from_url(s.redis_url, s)
for line in sys.stdin:
    if line.strip():
        print(store.append(parse_event(line)).id)
`;

/** Append events through the Python store (one atomic call each); returns their ids. */
function append(events: Record<string, unknown>[]): string[] {
  const out = execFileSync(PYTHON, ["-c", APPEND], {
    input: events.map((e) => JSON.stringify(e)).join("\n"),
    encoding: "utf8",
  });
  return out.trim().split("\n");
}

const clients: ProgressClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

describe.runIf(enabled)("against the real bridge", () => {
  it("subscribes, follows live events and resumes after a reconnect with only the missed ones", async () => {
    const jobId = `ts-${Date.now()}`;
    const base = { job_id: jobId, owner: "alice" };
    append([{ ...base, type: "processing_queued", task_name: "pdf.process" }]);
    const client = new Client({ url: url!, token: token!, WebSocket: NodeWebSocket, network: null });
    clients.push(client);
    const events: ProgressEvent[] = [];
    client.on("event", (e) => events.push(e));
    client.subscribe(jobId);
    await waitFor(() => client.getJob(jobId)?.status === "queued", "snapshot");
    append([{ ...base, type: "processing_started", attempt: 1 }, { ...base, type: "processing_progress", percent: 10 }]);
    await waitFor(() => client.getJob(jobId)?.percent === 10, "live progress");
    // Go away, miss two events, come back.
    client.close();
    const missed = append([
      { ...base, type: "processing_progress", percent: 50 },
      { ...base, type: "processing_completed" },
    ]);
    client.connect();
    await waitFor(() => client.getJob(jobId)?.status === "completed", "completed after resume");
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.slice(-2)).toEqual(missed);
    expect(events.map((e) => e.type)).toEqual([
      "processing_started",
      "processing_progress",
      "processing_progress",
      "processing_completed",
    ]);
  });

  it("lists the user's jobs in the user room", async () => {
    const jobId = `ts-room-${Date.now()}`;
    append([{ job_id: jobId, owner: "alice", type: "processing_queued", task_name: "pdf.process" }]);
    const client = new Client({ url: url!, token: token!, WebSocket: NodeWebSocket, network: null });
    clients.push(client);
    client.subscribeRoom("user:alice");
    await waitFor(() => client.getRoomJobs("user:alice").some((j) => j.jobId === jobId), "job listed");
    append([{ job_id: jobId, owner: "alice", type: "processing_progress", percent: 33 }]);
    await waitFor(() => client.getJob(jobId)?.percent === 33, "room live event");
  });
});
