// @vitest-environment happy-dom
/** The React hooks, rendered with @testing-library/react against the real test server. */
import { act, cleanup, render, renderHook, screen, waitFor as rtlWaitFor } from "@testing-library/react";
import { useState } from "react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ProgressClient } from "../src/client/index";
import type { ProgressEvent } from "../src/generated/events";
import { useConnectionState, useJobList, useJobProgress, useTransport } from "../src/react/index";
import { clientFor, NodeEventSource, TIMEOUT, waitFor } from "./helpers";
import { ProtocolServer } from "./protocolServer";

let server: ProtocolServer;
let client: ProgressClient;

beforeEach(async () => {
  server = await ProtocolServer.start();
  client = clientFor(server);
});

afterEach(async () => {
  cleanup();
  client.close();
  await server.stop();
});

const until = (check: () => void) => rtlWaitFor(check, { timeout: TIMEOUT });

describe("useConnectionState", () => {
  it("follows the client's transitions", async () => {
    const { result } = renderHook(() => useConnectionState(client));
    expect(result.current).toBe("idle");
    act(() => client.connect());
    await until(() => expect(result.current).toBe("open"));
    act(() => server.killAll());
    await until(() => expect(result.current).toBe("reconnecting"));
    await until(() => expect(result.current).toBe("open"));
  });
});

describe("useTransport", () => {
  it("follows the client from WebSocket to SSE and back", async () => {
    const fallible = clientFor(server, { EventSource: NodeEventSource, wsProbeInterval: 50 });
    try {
      server.blockUpgrade = true;
      const { result } = renderHook(() => ({ transport: useTransport(fallible), state: useConnectionState(fallible) }));
      expect(result.current).toEqual({ transport: "websocket", state: "idle" });
      act(() => fallible.connect());
      await until(() => expect(result.current).toEqual({ transport: "sse", state: "open" }));
      act(() => {
        server.blockUpgrade = false;
      });
      await until(() => expect(result.current).toEqual({ transport: "websocket", state: "open" }));
    } finally {
      fallible.close();
    }
  });
});

describe("useJobProgress", () => {
  it("renders the snapshot, then live progress, and reports the end once", async () => {
    server.createJob("job-1");
    server.publish("job-1", { type: "processing_started" });
    const seen: ProgressEvent[] = [];
    let finishedCalls = 0;

    function Progress() {
      const [renders, setRenders] = useState(0);
      // A new callback identity on every render must not resubscribe.
      const { state, job, finished } = useJobProgress(client, "job-1", {
        onEvent: (e) => {
          seen.push(e);
          setRenders((n) => n + 1);
        },
        onFinished: () => {
          finishedCalls += 1;
        },
      });
      return (
        <div>
          <p data-testid="conn">{state}</p>
          <p data-testid="status">{job?.status ?? "none"}</p>
          <progress aria-label="progress" value={job?.percent ?? 0} max={100} />
          <p data-testid="finished">{finished ? "yes" : "no"}</p>
          <p data-testid="renders">{renders}</p>
        </div>
      );
    }

    render(<Progress />);
    await until(() => expect(screen.getByTestId("status").textContent).toBe("started"));
    act(() => {
      server.publish("job-1", { type: "processing_progress", percent: 40 });
    });
    await until(() => expect(screen.getByLabelText("progress").getAttribute("value")).toBe("40"));
    // The connection drops; events published meanwhile arrive after the resume, once each.
    act(() => server.killAll());
    await until(() => expect(screen.getByTestId("conn").textContent).toBe("reconnecting"));
    act(() => {
      server.publish("job-1", { type: "processing_progress", percent: 90 });
      server.publish("job-1", { type: "processing_completed" });
    });
    await until(() => expect(screen.getByTestId("finished").textContent).toBe("yes"));
    expect(screen.getByTestId("conn").textContent).toBe("open");
    expect(seen.map((e) => e.type)).toEqual(["processing_progress", "processing_progress", "processing_completed"]);
    expect(finishedCalls).toBe(1);
    // One subscribe per connection: re-renders did not resubscribe.
    expect(server.framesOf("subscribe")).toHaveLength(2);
  });

  it("returns the error of a refused subscription", async () => {
    server.createJob("bobs-job", "bob");
    const { result } = renderHook(() => useJobProgress(client, "bobs-job"));
    await until(() => expect(result.current.error?.name).toBe("ServerError"));
    expect(result.current.error?.message).toMatch(/^forbidden: /);
    expect(result.current.job).toBeNull();
  });

  it("unsubscribes on unmount and follows a new job id", async () => {
    server.createJob("a");
    server.createJob("b");
    const { result, rerender, unmount } = renderHook(({ id }) => useJobProgress(client, id), {
      initialProps: { id: "a" as string | null },
    });
    await until(() => expect(result.current.job?.jobId).toBe("a"));
    rerender({ id: "b" });
    await until(() => expect(result.current.job?.jobId).toBe("b"));
    await waitFor(() => server.framesOf("unsubscribe").some((f) => "job_id" in f && f.job_id === "a"), "unsubscribe a");
    unmount();
    await waitFor(() => server.framesOf("unsubscribe").some((f) => "job_id" in f && f.job_id === "b"), "unsubscribe b");
  });
});

describe("useJobList", () => {
  it("lists the user's jobs and adds new ones live", async () => {
    server.createJob("a-1", "alice");
    server.publish("a-1", { type: "processing_queued", task_name: "pdf" });
    server.createJob("b-1", "bob");

    function Jobs() {
      const { jobs } = useJobList(client, "alice");
      return (
        <ul>
          {jobs.map((j) => (
            <li key={j.jobId}>
              {j.jobId}: {j.percent}
            </li>
          ))}
        </ul>
      );
    }

    render(<Jobs />);
    await until(() => expect(screen.getAllByRole("listitem").map((li) => li.textContent)).toEqual(["a-1: 0"]));
    act(() => {
      server.createJob("a-2", "alice");
      server.publish("a-2", { type: "processing_queued", task_name: "pdf" });
      server.publish("a-2", { type: "processing_progress", percent: 25 });
    });
    await until(() =>
      expect(screen.getAllByRole("listitem").map((li) => li.textContent).sort()).toEqual(["a-1: 0", "a-2: 25"]),
    );
  });
});
