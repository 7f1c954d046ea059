import { useCallback, useEffect, useMemo, useRef, useSyncExternalStore } from "react";
import {
  isFinished,
  type ClientState,
  type JobState,
  type ProgressClient,
  type ProgressClientError,
  type SnapshotInfo,
  type StreamPosition,
} from "../client/index.js";
import type { JobSnapshot, ProgressEvent } from "../generated/events.js";
import { batchedSubscribe } from "./batched.js";
import { useConnectionState } from "./useConnectionState.js";

/** Options of `useJobProgress`; callbacks may change on every render without resubscribing. */
export interface UseJobProgressOptions {
  /** Called once per new event of this job, in stream order. */
  onEvent?: (event: ProgressEvent) => void;
  /** Called when the job's state was replaced by a server snapshot. */
  onSnapshot?: (info: SnapshotInfo) => void;
  /** Called once when the job reaches its terminal status. */
  onFinished?: (job: JobState) => void;
  /** State loaded over HTTP, to render at once and resume from (read on subscribe only). */
  snapshot?: JobSnapshot;
  /** Position to resume from (read on subscribe only). */
  position?: StreamPosition;
}

/** What `useJobProgress` returns. */
export interface JobProgress {
  /** Connection state of the client. */
  state: ClientState;
  /** The job's live state; `null` until its snapshot or first event arrived. */
  job: JobState | null;
  /** True once the job completed, failed or was cancelled. */
  finished: boolean;
  /** Why watching failed (subscription refused, or the client closed on an error). */
  error: ProgressClientError | null;
}

/**
 * Watch one job: subscribes while mounted (and while `jobId` is not null), returns its live
 * state. Reconnects and resume are the client's business; this hook only reads.
 */
export function useJobProgress(
  client: ProgressClient,
  jobId: string | null,
  options: UseJobProgressOptions = {},
): JobProgress {
  const callbacks = useRef(options);
  useEffect(() => {
    callbacks.current = options;
  });

  const state = useConnectionState(client);

  // Re-renders at most once per animation frame, however many events a burst brings.
  const subscribeJob = useMemo(
    () =>
      batchedSubscribe((onChange) =>
        client.on("job", (change) => {
          if (change.jobId === jobId) onChange();
        }),
      ),
    [client, jobId],
  );
  const getJob = useCallback(() => (jobId ? (client.getJob(jobId) ?? null) : null), [client, jobId]);
  const job = useSyncExternalStore(subscribeJob, getJob, getJob);
  const getJobError = useCallback(() => (jobId ? client.getJobError(jobId) : null), [client, jobId]);
  const jobError = useSyncExternalStore(subscribeJob, getJobError, getJobError);

  useEffect(() => {
    if (!jobId) return;
    const { snapshot, position } = callbacks.current;
    let finishedReported = false;
    const reportFinished = (): void => {
      const current = client.getJob(jobId);
      if (!finishedReported && current && isFinished(current)) {
        finishedReported = true;
        callbacks.current.onFinished?.(current);
      }
    };
    const offEvent = client.on("event", (event) => {
      if (event.job_id !== jobId) return;
      callbacks.current.onEvent?.(event);
      reportFinished();
    });
    const offSnapshot = client.on("snapshot", (info) => {
      if (info.jobId !== jobId) return;
      callbacks.current.onSnapshot?.(info);
      reportFinished();
    });
    const unsubscribe = client.subscribe(jobId, {
      ...(snapshot ? { snapshot } : {}),
      ...(position ? { position } : {}),
    });
    reportFinished();
    return () => {
      unsubscribe();
      offEvent();
      offSnapshot();
    };
  }, [client, jobId]);

  return {
    state,
    job,
    finished: job !== null && isFinished(job),
    error: jobError ?? (state === "closed" ? client.lastError : null),
  };
}
