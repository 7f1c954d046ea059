/** The test factories build what the server sends: every schema field, the models' defaults. */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import {
  makeEvent,
  makeSnapshot,
  makeZoneInfo,
  makeZoneState,
  type EventFields,
  type EventType,
} from "./factories";

interface ObjectSchema {
  properties: Record<string, { default?: unknown; const?: unknown }>;
  required?: string[];
}

const schema = JSON.parse(
  readFileSync(resolve(import.meta.dirname, "../src/generated/events.schema.json"), "utf8"),
) as { $defs: Record<string, ObjectSchema> };

function def(name: string): ObjectSchema {
  const found = schema.$defs[name];
  if (!found) throw new Error(`no $defs.${name} in events.schema.json`);
  return found;
}

/** The schema definition of the event whose `type` is `type`. */
function eventDef(type: EventType): ObjectSchema {
  const found = Object.values(schema.$defs).find((d) => d.properties?.type?.const === type);
  if (!found) throw new Error(`no event definition for ${type}`);
  return found;
}

/** `value` has exactly the schema's properties, and the schema's default wherever `given` is silent. */
function expectSchemaDefaults(value: object, definition: ObjectSchema, given: object): void {
  expect(Object.keys(value).sort()).toEqual(Object.keys(definition.properties).sort());
  expect([...(definition.required ?? [])].sort()).toEqual(Object.keys(definition.properties).sort());
  for (const [name, property] of Object.entries(definition.properties)) {
    if (name in given || !("default" in property)) continue;
    expect((value as Record<string, unknown>)[name], name).toEqual(property.default);
  }
}

/** Only the fields without a default, for each event type. */
const REQUIRED_ONLY: { [T in EventType]: EventFields<T> } = {
  processing_queued: { job_id: "j", task_name: "pdf" },
  processing_started: { job_id: "j" },
  processing_progress: { job_id: "j", percent: 5 },
  zones_declared: { job_id: "j", zones: [] },
  zone_processing: { job_id: "j", zone_id: "z", zone_index: 0, processing_tool: "ocr" },
  zone_completed: { job_id: "j", zone_id: "z", zone_index: 0, processing_tool: "ocr" },
  processing_retrying: { job_id: "j", attempt: 2, reason: "timeout" },
  processing_completed: { job_id: "j" },
  processing_failed: { job_id: "j", error_type: "E", error_message: "boom" },
  processing_cancelled: { job_id: "j" },
  export_started: { job_id: "j", export_id: "x", format: "csv" },
  export_progress: { job_id: "j", export_id: "x", format: "csv", percent: 1 },
  export_completed: { job_id: "j", export_id: "x", format: "csv", size_bytes: 1, filename: "f" },
  export_failed: { job_id: "j", export_id: "x", format: "csv", error_message: "disk" },
};

describe("makeEvent", () => {
  it.each(Object.keys(REQUIRED_ONLY) as EventType[])("%s: every field, defaults as in the model", (type) => {
    const fields = REQUIRED_ONLY[type];
    const event = makeEvent(type, fields);
    expect(event.type).toBe(type);
    expect(typeof event.ts).toBe("number");
    expectSchemaDefaults(event, eventDef(type), fields);
  });

  it("lets given fields win and gives each event its own lists", () => {
    const event = makeEvent("zone_completed", {
      job_id: "j",
      zone_id: "z",
      zone_index: 0,
      processing_tool: "ocr",
      status: "failed",
      ts: 12,
    });
    expect(event).toMatchObject({ status: "failed", ts: 12, v: 1, id: null });
    const a = makeEvent("zones_declared", { job_id: "j", zones: [] });
    const b = makeEvent("zones_declared", { job_id: "j", zones: [] });
    expect(a.pages).not.toBe(b.pages);
  });

  it("is checked by the compiler", () => {
    // @ts-expect-error percent has no default
    makeEvent("processing_progress", { job_id: "j" });
    // @ts-expect-error job_id has no default
    makeEvent("processing_started", {});
    // @ts-expect-error not a field of processing_started
    makeEvent("processing_started", { job_id: "j", percent: 1 });
  });
});

describe("makeZoneInfo, makeZoneState, makeSnapshot", () => {
  it("fill every field with the model's default", () => {
    const given = { zone_id: "z", index: 0 };
    expectSchemaDefaults(makeZoneInfo(given), def("ZoneInfo"), given);
    expectSchemaDefaults(makeZoneState(given), def("ZoneState"), given);
    const position = { job_id: "j", epoch: "e", last_id: "1-0" };
    const snapshot = makeSnapshot(position);
    expectSchemaDefaults(snapshot, def("JobSnapshot"), position);
    expect(snapshot).toMatchObject({ pages: [], zones: [], exports: [] });
  });
});
