/**
 * The bridge's own event store, driven from a test: one long-lived Python process (the repo's
 * virtualenv) that appends events through `progress_bridge.store.EventStore` (the atomic append
 * the Celery side uses) and reads a job's kept history back. One process for a whole test file:
 * a Python start per call would cost half a second each.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { resolve } from "node:path";
import { createInterface, type Interface } from "node:readline";

const ROOT = resolve(import.meta.dirname, "../../..");
const PYTHON = process.env.PROGRESS_PYTHON ?? resolve(ROOT, ".venv/bin/python");

const SERVE = `
import json, sys
from progress_bridge.config import Settings
from progress_bridge.events import parse_event
from progress_bridge.store import EventStore
settings = Settings.from_env()
store = EventStore.from_url(settings.redis_url, settings)
for line in sys.stdin:
    request = json.loads(line)
    try:
        if "append" in request:
            answer = [store.append(parse_event(event)).id for event in request["append"]]
        else:
            answer = [event.id for event in store.history(request["history"])]
        print(json.dumps({"ok": answer}), flush=True)
    except Exception as exc:
        print(json.dumps({"error": repr(exc)}), flush=True)
`;

/** An event as the Python model takes it: `type`, `job_id` and the fields without a default. */
export type EventInput = { type: string; job_id: string } & Record<string, unknown>;

/** The store of the bridge under test, at `redisUrl`. */
export class PythonStore {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly waiting: ((line: string) => void)[] = [];
  private stderr = "";

  constructor(redisUrl: string) {
    this.child = spawn(PYTHON, ["-c", SERVE], {
      cwd: ROOT,
      env: { ...process.env, PROGRESS_REDIS_URL: redisUrl },
    });
    this.child.stderr.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on("line", (line) => this.waiting.shift()?.(line));
  }

  /** Append events in order (one atomic call each); returns their stream ids. */
  append(...events: EventInput[]): Promise<string[]> {
    return this.call({ append: events });
  }

  /** The ids of every event the store keeps for the job, in order. */
  history(jobId: string): Promise<string[]> {
    return this.call({ history: jobId });
  }

  /** End the Python process. */
  close(): void {
    this.lines.close();
    this.child.stdin.end();
  }

  private call(request: object): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error(`store helper exited: ${this.stderr}`));
      this.child.once("exit", onExit);
      this.waiting.push((line) => {
        this.child.off("exit", onExit);
        const answer = JSON.parse(line) as { ok?: string[]; error?: string };
        if (answer.ok) resolve(answer.ok);
        else reject(new Error(`store helper: ${answer.error}`));
      });
      this.child.stdin.write(JSON.stringify(request) + "\n");
    });
  }
}
