import { useCallback, useSyncExternalStore } from "react";
import type { ClientState, ProgressClient } from "../client/index.js";

/** The client's connection state; re-renders on every transition. */
export function useConnectionState(client: ProgressClient): ClientState {
  const subscribe = useCallback((onChange: () => void) => client.on("state", onChange), [client]);
  return useSyncExternalStore(subscribe, () => client.state, () => client.state);
}
