import { useCallback, useEffect, useMemo, useSyncExternalStore } from "react";
import type { ClientState, JobState, ProgressClient, ProgressClientError } from "../client/index.js";
import { batchedSubscribe } from "./batched.js";
import { useConnectionState } from "./useConnectionState.js";

/** What `useJobList` returns. */
export interface JobList {
  /** Connection state of the client. */
  state: ClientState;
  /** The user's jobs, newest first, each with its live state. */
  jobs: readonly JobState[];
  /** Why watching failed (room refused, or the client closed on an error). */
  error: ProgressClientError | null;
}

const NONE: readonly JobState[] = Object.freeze([]);

/** Watch every job of a user (room `user:<name>`) while mounted and `user` is not null. */
export function useJobList(client: ProgressClient, user: string | null): JobList {
  const room = user ? `user:${user}` : null;
  const state = useConnectionState(client);

  // Re-renders at most once per animation frame, however many events a burst brings.
  const subscribeRoom = useMemo(
    () =>
      batchedSubscribe((onChange) =>
        client.on("room", (change) => {
          if (change.room === room) onChange();
        }),
      ),
    [client, room],
  );
  const getJobs = useCallback(() => (room ? client.getRoomJobs(room) : NONE), [client, room]);
  const jobs = useSyncExternalStore(subscribeRoom, getJobs, getJobs);
  const getError = useCallback(() => (room ? client.getRoomError(room) : null), [client, room]);
  const roomError = useSyncExternalStore(subscribeRoom, getError, getError);

  useEffect(() => {
    if (!room) return;
    return client.subscribeRoom(room);
  }, [client, room]);

  return { state, jobs, error: roomError ?? (state === "closed" ? client.lastError : null) };
}
