import { useCallback, useSyncExternalStore } from "react";
import type { ProgressClient } from "../client/index.js";
import type { JobPresence } from "../generated/events.js";

/**
 * Who watches a job the client subscribed to (with `useJobProgress`, which holds the
 * subscription): `watching` connections on every bridge, this one included, and `users` for
 * admins. `null` until the bridge said, or when presence is off on the bridge. Read-only: it
 * subscribes to nothing by itself.
 */
export function useJobPresence(client: ProgressClient, jobId: string | null): JobPresence | null {
  const subscribe = useCallback(
    (onChange: () => void) =>
      client.on("presence", (change) => {
        if (change.jobId === jobId) onChange();
      }),
    [client, jobId],
  );
  const get = useCallback(() => (jobId ? (client.getPresence(jobId) ?? null) : null), [client, jobId]);
  return useSyncExternalStore(subscribe, get, get);
}
