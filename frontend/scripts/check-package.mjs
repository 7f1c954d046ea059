// Packs the library as `npm pack` would (after `npm run build:lib`), prints the tarball's files,
// and checks it as a consumer would see it: only dist/lib (JS, source maps, types), README and
// package.json; every module loads with its imports resolved through `exports`; and a TypeScript
// consumer type-checks against both entry points (".", "./react") under node16 and bundler
// resolution. Run by `npm run build` (so by scripts/test); exits non-zero on any problem.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

const FRONTEND = resolve(import.meta.dirname, "..");
const MODULES = join(FRONTEND, "node_modules");
const tmp = mkdtempSync(join(tmpdir(), "progress-bridge-pack-"));
const problems = [];

try {
  // 1. Pack (the build already ran; --ignore-scripts skips prepack's second build).
  const [pack] = JSON.parse(
    execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], {
      cwd: FRONTEND,
      encoding: "utf8",
    }),
  );
  const files = pack.files.map((f) => f.path).sort();
  console.log(`${pack.filename}: ${files.length} files, ${pack.size} bytes packed`);
  for (const f of files) console.log(`  ${f}`);
  const required = [
    "package.json",
    "README.md",
    "dist/lib/index.js",
    "dist/lib/react.js",
    "dist/lib/types/index.d.ts",
    "dist/lib/types/react/index.d.ts",
  ];
  for (const f of required) if (!files.includes(f)) problems.push(`missing ${f}`);
  const stray = files.filter((f) => !required.includes(f) && !f.startsWith("dist/lib/"));
  if (stray.length) problems.push(`files outside dist/lib: ${stray.join(", ")}`);
  if (!files.some((f) => /^dist\/lib\/msgpackCodec-[^/]+\.js$/.test(f))) problems.push("no msgpack chunk");

  // 2. Install it into a throw-away consumer, its dependencies linked from ours.
  const app = join(tmp, "app");
  const pkg = join(app, "node_modules", "progress-bridge-client");
  mkdirSync(pkg, { recursive: true });
  execFileSync("tar", ["xzf", join(tmp, pack.filename), "-C", pkg, "--strip-components=1"]);
  for (const dep of ["@msgpack/msgpack", "react", "@types/react"]) {
    mkdirSync(dirname(join(app, "node_modules", dep)), { recursive: true });
    symlinkSync(join(MODULES, dep), join(app, "node_modules", dep), "dir");
  }
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", type: "module", private: true }));

  // 3. Every module of the package loads; the entry points export what the README shows.
  const lib = join(pkg, "dist", "lib");
  const modules = readdirSync(lib).filter((f) => f.endsWith(".js"));
  // The entry points by package name (through `exports`); the chunks by path (not exported).
  writeFileSync(
    join(app, "load.mjs"),
    `import * as core from "progress-bridge-client";
import * as react from "progress-bridge-client/react";
${modules.map((m) => `await import(${JSON.stringify(join(lib, m))});`).join("\n")}
const exported = { ProgressClient: core.ProgressClient, CloseCode: core.CloseCode, ErrorCode: core.ErrorCode,
  useJobProgress: react.useJobProgress, useJobList: react.useJobList };
for (const [name, value] of Object.entries(exported)) if (!value) throw new Error("missing export " + name);
`,
  );
  try {
    execFileSync(process.execPath, [join(app, "load.mjs")], { cwd: app, stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    problems.push(`loading the package failed: ${e.stderr}`);
  }

  // 4. A TypeScript consumer type-checks against both entry points.
  writeFileSync(
    join(app, "consumer.ts"),
    `import { ProgressClient, ErrorCode, type JobState, type ServerFrame, type WireFormat } from "progress-bridge-client";
import { useJobProgress, type JobProgress } from "progress-bridge-client/react";
const format: WireFormat = "msgpack";
const client = new ProgressClient({ url: "wss://example.com/ws", token: "t", format });
const code: ErrorCode = ErrorCode.FORBIDDEN;
export const used: [ProgressClient, JobState | undefined, ServerFrame | null, typeof useJobProgress, JobProgress | null, ErrorCode] =
  [client, client.getJob("j"), null, useJobProgress, null, code];
`,
  );
  const tsc = join(MODULES, "typescript", "bin", "tsc");
  for (const resolution of [["--module", "node16", "--moduleResolution", "node16"], ["--module", "esnext", "--moduleResolution", "bundler"]]) {
    try {
      execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--target", "es2022", "--lib", "es2022,dom",
        ...resolution, "consumer.ts"], { cwd: app, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      problems.push(`types under ${resolution[3]} resolution:\n${e.stdout}${e.stderr}`);
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

if (problems.length) {
  console.error(`package check failed:\n- ${problems.join("\n- ")}`);
  process.exit(1);
}
console.log("package check: ok (loads, and type-checks under node16 and bundler resolution)");
