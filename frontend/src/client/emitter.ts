/** A small typed, synchronous event emitter. */

/** A function listening to one event type. */
export type Listener<T> = (payload: T) => void;

/**
 * Calls listeners synchronously, in the order they were added. A listener added or removed
 * while an event is being delivered takes effect from the next event. A listener that throws
 * does not stop the others (nor the caller, e.g. the socket's message handler): its error is
 * rethrown in a microtask, where it shows as an uncaught error.
 */
export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Listen to one kind of event; returns the function that stops listening. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Deliver one event to every current listener of its type. */
  emit<K extends keyof Events>(type: K, payload: Events[K]): void {
    const set = this.listeners.get(type) as Set<Listener<Events[K]>> | undefined;
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
