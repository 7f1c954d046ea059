/**
 * What the job view says about a job's progress, as plain values (no React): its phase, the
 * page-by-page picture, and the progress line.
 *
 * Zones are declared page by page while a job runs (and a split job's parts declare theirs in
 * parallel), so `zonesTotal` grows until the last page is analysed: a line "120/212 zones" would
 * keep changing its denominator. The stable denominator is the page count, which the upload
 * answer gives (the snapshot only lists pages as they are declared): the line reads "55 of 216
 * pages analysed", with zones "so far" until every page is declared.
 */
import { isFinished, type JobState } from "../client/index.js";

/** Where a job is, as the view shows it. */
export type Phase = "queued" | "starting" | "running" | "retrying" | "completed" | "stopped";

/** One page of the document, as far as the job got with it. */
export type PageState =
  /** Declared, every zone done (completed or failed). */
  | "analysed"
  /** Declared, some zones not done yet. */
  | "analysing"
  /** Not declared yet; the job runs. */
  | "waiting"
  /** Declared, but the job ended before all its zones were done. */
  | "stopped"
  /** Never declared: the job ended first. */
  | "not-reached";

/** A page's number, state and zone counts. */
export interface PageProgress {
  number: number;
  state: PageState;
  zones: number;
  done: number;
}

/** The summary of one job. */
export interface JobSummary {
  phase: Phase;
  /** Pages by number: every declared page, and every page up to the known total. */
  pages: PageProgress[];
  /** Pages with every zone done. */
  analysed: number;
  /** Pages declared so far. */
  declared: number;
  /** The document's page count, when known (upload answer, or every page of a completed job). */
  total: number | null;
  /** Every page is declared: the zone count is final. */
  allDeclared: boolean;
  /** Zones done (completed or failed), and declared: the counters, or the zones seen if more. */
  zonesDone: number;
  zonesKnown: number;
  /** The progress line. */
  text: string;
}

function phaseOf(job: JobState, declared: number): Phase {
  if (job.status === "completed") return "completed";
  if (isFinished(job)) return "stopped";
  if (job.status === "queued") return "queued";
  if (job.status === "retrying") return "retrying";
  return declared === 0 && job.zonesTotal === 0 && job.percent === 0 ? "starting" : "running";
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Summarize `job`; `pagesTotal` is the document's page count when the page knows it (from the
 * upload answer), else `null`.
 */
export function summarizeJob(job: JobState, pagesTotal: number | null): JobSummary {
  const byPage = new Map<number, { zones: number; done: number }>();
  for (const p of job.pages) byPage.set(p.number, { zones: 0, done: 0 });
  let zonesSeen = 0;
  let doneSeen = 0;
  for (const z of Object.values(job.zones)) {
    const isDone = z.status === "completed" || z.status === "failed";
    zonesSeen += 1;
    if (isDone) doneSeen += 1;
    if (z.page == null) continue;
    const counts = byPage.get(z.page) ?? { zones: 0, done: 0 };
    counts.zones += 1;
    if (isDone) counts.done += 1;
    byPage.set(z.page, counts);
  }
  const declared = byPage.size;
  const ended = isFinished(job);
  const total = pagesTotal ?? (job.status === "completed" ? declared : null);
  const allDeclared = job.status === "completed" || (total !== null && declared >= total);
  const last = Math.max(total ?? 0, ...byPage.keys());
  const pages: PageProgress[] = [];
  let analysed = 0;
  for (let number = 1; number <= last; number++) {
    const counts = byPage.get(number);
    let state: PageState;
    if (!counts) state = ended ? "not-reached" : "waiting";
    else if (counts.done === counts.zones) state = "analysed";
    else state = ended ? "stopped" : "analysing";
    if (state === "analysed") analysed += 1;
    pages.push({ number, state, zones: counts?.zones ?? 0, done: counts?.done ?? 0 });
  }
  const phase = phaseOf(job, declared);
  // A split job's declarations carry no total, and its counters come with coalesced progress
  // updates: the zones seen are never fewer than the counters say, and sometimes more.
  const zonesDone = Math.max(job.zonesCompleted, doneSeen);
  const zonesKnown = Math.max(job.zonesTotal, zonesSeen);
  const summary = { phase, pages, analysed, declared, total, allDeclared, zonesDone, zonesKnown };
  return { ...summary, text: progressLine(job, summary) };
}

function progressLine(job: JobState, s: Omit<JobSummary, "text">): string {
  const toAnalyse = s.total !== null ? ` · ${plural(s.total, "page")} to analyse` : "";
  const percent = `${Math.round(job.percent)}%`;
  const zones = `${s.zonesDone}/${s.zonesKnown} zones${s.allDeclared ? "" : " so far"}`;
  const pages =
    s.total !== null ? `${s.analysed} of ${s.total} pages analysed` : `${plural(s.analysed, "page")} analysed so far`;
  switch (s.phase) {
    case "queued":
      return `Queued — waiting for a worker${toAnalyse}`;
    case "starting":
      return `Starting — reading the document${toAnalyse}`;
    case "retrying":
      return `Retrying (attempt ${job.attempt + 1}) · ${percent} · ${pages}`;
    case "running":
      return `${percent} · ${zones} · ${pages}`;
    case "completed":
      return `${percent} · ${s.zonesDone}/${s.zonesKnown} zones · ${plural(s.declared, "page")}`;
    case "stopped": {
      const notReached = s.pages.filter((p) => p.state === "not-reached").length;
      const reached =
        s.total !== null
          ? `${s.analysed} of ${s.total} pages analysed${notReached ? `, ${notReached} not reached` : ""}`
          : `${plural(s.analysed, "page")} analysed`;
      return `Stopped at ${percent} · ${s.zonesDone}/${s.zonesKnown} zones done · ${reached}`;
    }
  }
}
