/**
 * Seconds left for the job view: the worker's ETA when its events carry one, else an estimate
 * from the job's own pace.
 *
 * Why the estimate: a split job's progress events (every job above the canvas threshold, 40
 * pages; the 216- and 432-page jobs) carry `eta_s: null`. Their percent is summed by the store
 * from the parts' shares, and no one computes an ETA for the sum, so the snapshot's `eta_s`
 * stays null until the end. Measured on a 60-page job: 0 of 333 `processing_progress` events had
 * an ETA. The page therefore estimates one from `(ts, percent)` samples of the job itself.
 */
import { useMemo, useState } from "react";
import type { JobState } from "../client/index.js";

/** Samples older than this (s) no longer count: the pace follows changes within a minute. */
export const PACE_WINDOW_S = 60;
/** No estimate before the samples span this long (s): two close samples make wild guesses. */
export const MIN_PACE_SPAN_S = 3;

/** An ETA and the Unix time (s, the events' clock) it was stated at. */
export interface Eta {
  etaS: number;
  etaTs: number;
  /** True when the page estimated it (the worker sent none). */
  estimated: boolean;
}

/** The pace of one job from `(ts, percent)` samples: percent per second over a sliding window. */
export class PaceEstimator {
  private samples: { t: number; p: number }[] = [];

  /** Record the job's percent at Unix time `t` (s); older or repeated samples are ignored. */
  observe(t: number, percent: number): void {
    const last = this.samples.at(-1);
    if (last && (t < last.t || (t === last.t && percent === last.p))) return;
    if (last && percent < last.p) this.samples = []; // A new attempt started over.
    this.samples.push({ t, p: percent });
    const cutoff = t - PACE_WINDOW_S;
    while (this.samples.length > 2 && (this.samples[0]?.t ?? t) < cutoff) this.samples.shift();
  }

  /** Seconds left as of the newest sample, or `null` while the pace is unknown. */
  estimate(): Eta | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.t - first.t < MIN_PACE_SPAN_S || last.p >= 100) return null;
    const rate = (last.p - first.p) / (last.t - first.t);
    if (rate <= 0) return null;
    return { etaS: (100 - last.p) / rate, etaTs: last.t, estimated: true };
  }
}

/**
 * The ETA to show for `job` while it runs: the worker's, else the page's estimate; `null` when
 * neither is known or the job has ended.
 */
export function useEta(job: JobState | null, finished: boolean): Eta | null {
  const [pace] = useState(() => new PaceEstimator());
  const t = job?.updatedTs ?? null;
  const percent = job?.percent ?? 0;
  const estimate = useMemo(() => {
    if (t === null) return null;
    pace.observe(t, percent);
    return pace.estimate();
  }, [pace, t, percent]);
  if (!job || finished) return null;
  if (job.etaS != null) return { etaS: job.etaS, etaTs: job.etaTs ?? t ?? 0, estimated: false };
  return estimate;
}
