/** The job view's event log: lines in order, each key once (O(1) per line, not O(lines)). */

/** One log line; `key` is the event's stream id (or a made-up key for the page's own lines). */
export interface LogLine {
  key: string;
  time: string;
  text: string;
}

/**
 * An append-mostly list of log lines with a set of their keys, as an external store: `version`
 * changes with every line added, `lines` is read when rendering. Every line is kept (the set
 * needs them all to drop repeats); the view decides how many to show.
 */
export class EventLogStore {
  private readonly list: LogLine[] = [];
  private readonly keys = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private version = 0;

  /** The lines, oldest first. Treat as read-only; it changes in place as lines are added. */
  get lines(): readonly LogLine[] {
    return this.list;
  }

  /** Add a line at the end unless one with its key is already there; true when added. */
  append(line: LogLine): boolean {
    if (this.keys.has(line.key)) return false;
    this.keys.add(line.key);
    this.list.push(line);
    this.changed();
    return true;
  }

  /** Add a line at the start unless one with its key is already there; true when added. */
  prepend(line: LogLine): boolean {
    if (this.keys.has(line.key)) return false;
    this.keys.add(line.key);
    this.list.unshift(line);
    this.changed();
    return true;
  }

  /** For `useSyncExternalStore`. */
  readonly subscribe = (onChange: () => void): (() => void) => {
    this.listeners.add(onChange);
    return () => {
      this.listeners.delete(onChange);
    };
  };

  /** For `useSyncExternalStore`: a number that changes whenever a line was added. */
  readonly getVersion = (): number => this.version;

  private changed(): void {
    this.version += 1;
    for (const listener of this.listeners) listener();
  }
}
