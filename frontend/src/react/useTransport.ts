import { useCallback, useSyncExternalStore } from "react";
import type { ProgressClient, TransportKind } from "../client/index.js";

/** What the client's connection runs on, `"websocket"` or `"sse"`; re-renders when it moves. */
export function useTransport(client: ProgressClient): TransportKind {
  const subscribe = useCallback((onChange: () => void) => client.on("transport", onChange), [client]);
  return useSyncExternalStore(subscribe, () => client.transport, () => client.transport);
}
