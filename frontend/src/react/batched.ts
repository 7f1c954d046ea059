/**
 * Coalesced store notifications for `useSyncExternalStore`.
 *
 * The client notifies its listeners once per frame it receives, and a browser delivers every
 * WebSocket frame in a task of its own; React renders a store update at the end of that task.
 * A big job sends events faster than a page can render (1,500 events → 1,500 renders of the
 * whole view). `batchedSubscribe` wraps a store's subscribe function so that the changes of a
 * burst reach React once per animation frame: the page then renders at most once per frame,
 * always with the latest state (`getSnapshot` still reads the store directly).
 *
 * All batched subscriptions share one flush, so the hooks of one page (job, room, event log)
 * render together. While the page is hidden (browsers pause animation frames) a timer takes
 * over, so the state is never stale by more than `FALLBACK_MS` (or the browser's throttling).
 */

/** A store's subscribe function, as `useSyncExternalStore` takes it. */
export type Subscribe = (onChange: () => void) => () => void;

/** Longest wait for an animation frame before a timer flushes instead (hidden pages). */
const FALLBACK_MS = 100;

interface FrameApi {
  requestAnimationFrame?: (callback: () => void) => unknown;
}

const pending = new Set<() => void>();
let scheduled = false;

function flush(): void {
  scheduled = false;
  const callbacks = [...pending];
  pending.clear();
  let failure: { error: unknown } | null = null;
  for (const callback of callbacks) {
    try {
      callback();
    } catch (error) {
      failure ??= { error };
    }
  }
  if (failure) throw failure.error;
}

function scheduleFlush(): void {
  if (scheduled) return;
  scheduled = true;
  const g = globalThis as FrameApi;
  if (typeof g.requestAnimationFrame !== "function") {
    setTimeout(flush, 0);
    return;
  }
  // Whichever comes first, the frame or the timer, flushes; the other one then does nothing.
  let done = false;
  const run = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    flush();
  };
  const timer = setTimeout(run, FALLBACK_MS);
  g.requestAnimationFrame(run);
}

/**
 * `subscribe`, with notifications coalesced: however many changes happen before the next
 * animation frame, `onChange` is called once, in that frame. Unsubscribing drops a pending call.
 */
export function batchedSubscribe(subscribe: Subscribe): Subscribe {
  return (onChange) => {
    // A wrapper of our own, so two subscriptions sharing one `onChange` stay independent.
    const notify = (): void => onChange();
    const off = subscribe(() => {
      pending.add(notify);
      scheduleFlush();
    });
    return () => {
      off();
      pending.delete(notify);
    };
  };
}
