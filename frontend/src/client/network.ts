/** Where the client learns that the network went away or came back. */

/** A source of `offline`/`online` events and of the current network state. */
export interface NetworkMonitor {
  /** Dispatches `offline` and `online` events (the browser's `window`). */
  target: EventTarget;
  /** Whether the network is up now (`navigator.onLine`). */
  isOnline: () => boolean;
}

/** The browser's `window` and `navigator.onLine`; `null` outside a browser (Node, workers). */
export function browserNetwork(): NetworkMonitor | null {
  const g = globalThis as { window?: EventTarget; navigator?: { onLine?: boolean } };
  if (!g.window || typeof g.window.addEventListener !== "function") return null;
  return { target: g.window, isOnline: () => g.navigator?.onLine !== false };
}
