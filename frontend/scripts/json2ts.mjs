// Reads the protocol's JSON Schema (stdin: an index object whose $defs hold the events, the
// snapshot, every frame and the codes) and prints TypeScript (stdout).
// Called by ../../scripts/gen_types; not meant to be run by hand.
import { compile } from "json-schema-to-typescript";

const BANNER = `/* eslint-disable */
/**
 * GENERATED FILE - DO NOT EDIT.
 *
 * Source: progress_bridge.bridge.core.frames.protocol_schema() (pydantic), via scripts/gen_types and
 * json-schema-to-typescript. Regenerate with \`npm run gen\`; \`npm run gen:check\` fails on drift.
 */`;

/**
 * Shape pydantic's (2020-12) output into what json-schema-to-typescript reads well:
 * - property-level `title`s would each become a named alias (`type JobId = string`): drop them,
 *   keep the titles of the $defs (the model names);
 * - `$defs` become draft-07 `definitions` (which `unreachableDefinitions` reads, so every
 *   definition is emitted, referenced or not);
 * - a `$ref` keeps no siblings (else each becomes a duplicate named type);
 * - tuples use `prefixItems`: rewrite as draft-07 array `items`;
 * - the `type` tag has a default, so pydantic leaves it out of `required`; on the wire it is
 *   always present and it is the discriminator, so mark it required.
 */
function normalize(node, isNamed) {
  if (Array.isArray(node)) return node.map((n) => normalize(n, false));
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "title" && !isNamed) continue;
    if (key === "discriminator") continue;
    if (key === "$defs") {
      out.definitions = Object.fromEntries(
        Object.entries(value).map(([name, def]) => [name, normalize(def, true)]),
      );
    } else if (key === "properties") {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([name, prop]) => [name, normalize(prop, false)]),
      );
    } else if (key === "$ref" && typeof value === "string") {
      out.$ref = value.replace("#/$defs/", "#/definitions/");
    } else if (key === "prefixItems") {
      out.items = normalize(value, false);
    } else {
      out[key] = normalize(value, false);
    }
  }
  // A `$ref` with siblings (pydantic adds `default`) would be emitted as a copy (`JobStatus1`).
  if (typeof out.$ref === "string") return { $ref: out.$ref };
  const tag = out.properties?.type;
  if (tag && typeof tag === "object" && "const" in tag) {
    out.required = [...new Set(["type", ...(out.required ?? [])])];
  }
  return out;
}

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const root = normalize(JSON.parse(input), true);
const ts = await compile(root, "ProgressBridgeTypes", {
  bannerComment: BANNER,
  additionalProperties: false,
  unreachableDefinitions: true,
  declareExternallyReferenced: true,
  enableConstEnums: false,
  strictIndexSignatures: true,
  style: { singleQuote: false, printWidth: 100 },
});
process.stdout.write(ts);
