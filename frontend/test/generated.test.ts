/** One schema (DESIGN.md §11): the committed TypeScript types match the Python models. */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const PYTHON = process.env.PROGRESS_PYTHON ?? resolve(ROOT, ".venv/bin/python");

describe("generated event types", () => {
  // In CI (CI=true) a missing virtualenv fails the check instead of skipping it.
  it.runIf(existsSync(PYTHON) || !!process.env.CI)("are up to date with progress_bridge.events (gen_types --check)", () => {
    const out = execFileSync(PYTHON, [resolve(ROOT, "scripts/gen_types"), "--check"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(out).toContain("up to date");
  });
});
