/** One restartable `setTimeout`. */

/** A timeout that can be (re)started and stopped; at most one is pending at a time. */
export class Timer {
  private handle: ReturnType<typeof setTimeout> | null = null;

  /** Whether a callback is waiting to run. */
  get pending(): boolean {
    return this.handle !== null;
  }

  /** Run `callback` after `ms`, replacing any pending one. */
  start(ms: number, callback: () => void): void {
    this.stop();
    this.handle = setTimeout(() => {
      this.handle = null;
      callback();
    }, ms);
  }

  /** Drop the pending callback, if any. */
  stop(): void {
    if (this.handle !== null) clearTimeout(this.handle);
    this.handle = null;
  }
}
