import { useCallback, useEffect, useId, useMemo, useRef, useState, useSyncExternalStore } from "react";
import type { ProgressClient } from "../../client/index";
import type { ProgressEvent } from "../../generated/events";
import { batchedSubscribe, useJobPresence, useJobProgress } from "../../react/index";
import { cancelJob, fetchPageImage, fetchZoneContent } from "../api";
import { useEta } from "../eta";
import { EventLogStore } from "../eventLog";
import { summarizeJob, type Phase } from "../jobSummary";
import { PageImages } from "../pageImages";
import { useUpload } from "../uploads";
import { EventLog } from "./EventLog";
import { Exports } from "./Exports";
import { describeEvent, formatDuration, statusLabel } from "./format";
import { ZoneMap } from "./ZoneMap";

function clock(ts: number | null | undefined): string {
  return ts ? new Date(ts * 1000).toLocaleTimeString() : "";
}

/** Re-renders every `ms` while `active`, for the ETA countdown. */
function useNow(active: boolean, ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [active, ms]);
  return now;
}

/**
 * Seconds left, counted down on this machine's clock from when the ETA arrived (the event's
 * `ts` comes from the worker's clock, which may be skewed; `etaRemaining` uses that one).
 */
function useLocalEta(etaS: number | null, etaTs: number | null, now: number): number | null {
  const [anchor, setAnchor] = useState<{ etaS: number | null; etaTs: number | null; at: number }>(
    () => ({ etaS, etaTs, at: Date.now() }),
  );
  if (anchor.etaS !== etaS || anchor.etaTs !== etaTs) {
    // Adjusting state while rendering when an input changed (React's documented pattern).
    setAnchor({ etaS, etaTs, at: Date.now() });
  }
  if (etaS == null) return null;
  return Math.max(0, etaS - Math.max(0, now - anchor.at) / 1000);
}

/** What the operation line says before the worker names an operation. */
const IDLE_OPERATION: Partial<Record<Phase, string>> = {
  queued: "Waiting for a worker…",
  starting: "Opening the document…",
};

/** "1 watching (you)", "3 watching": connections on every bridge, this page's included. */
function watchingLabel(watching: number): string {
  return watching <= 1 ? "1 watching (you)" : `${watching} watching`;
}

/** One job, live: progress, ETA, current operation, zone map, log, exports, cancel. */
export function JobView({ client, jobId, token }: { client: ProgressClient; jobId: string; token: () => string }) {
  const id = useId();
  const [actionError, setActionError] = useState<string | null>(null);
  const [cancelling, setCancelling] = useState(false);

  // Lines are keyed by stream id; the client already delivers each event once, and the store's
  // key set keeps the log free of repeats even if a listener fires twice (StrictMode). The log
  // re-renders with the job, at most once per animation frame.
  const [log] = useState(() => new EventLogStore());
  const subscribeLog = useMemo(() => batchedSubscribe(log.subscribe), [log]);
  const logVersion = useSyncExternalStore(subscribeLog, log.getVersion, log.getVersion);

  const { job, finished, error } = useJobProgress(client, jobId, {
    onEvent: (event: ProgressEvent) =>
      log.append({ key: event.id ?? `${event.type}-${event.ts}`, time: clock(event.ts), text: describeEvent(event) }),
    onSnapshot: (info) =>
      log.append({
        key: `snapshot-${info.snapshot.epoch}-${info.snapshot.last_id}`,
        time: clock(info.snapshot.updated_ts),
        text: info.recovered
          ? `Loaded: ${statusLabel(info.snapshot.status ?? "queued")}, ${Math.round(info.snapshot.percent ?? 0)}%`
          : `Caught up from a snapshot (${info.reason}): ${Math.round(info.snapshot.percent ?? 0)}%`,
      }),
  });

  // A job the client already follows (e.g. through the job list) gets no new snapshot: say
  // where the log starts instead.
  useEffect(() => {
    const known = client.getJob(jobId);
    if (!known) return;
    log.prepend({
      key: "watch-start",
      time: clock(known.updatedTs),
      text: `Watching from: ${statusLabel(known.status)}, ${Math.round(known.percent)}%`,
    });
  }, [client, jobId, log]);

  // What was extracted: page images and zone content, fetched with the latest token (a token
  // refreshed while the view is open is used from then on). The view is keyed by job id.
  const latestToken = useRef(token);
  useEffect(() => {
    latestToken.current = token;
  }, [token]);
  const [images] = useState(
    () => new PageImages((page, signal) => fetchPageImage(latestToken.current(), jobId, page, signal)),
  );
  useEffect(() => () => images.clear(), [images]);
  const loadZone = useCallback(
    (zoneId: string, signal: AbortSignal) => fetchZoneContent(latestToken.current(), jobId, zoneId, signal),
    [jobId],
  );

  const presence = useJobPresence(client, jobId);
  const upload = useUpload(jobId);
  const summary = useMemo(() => (job ? summarizeJob(job, upload?.pages ?? null) : null), [job, upload]);
  const shownEta = useEta(job, finished);
  const now = useNow(shownEta != null);
  const eta = useLocalEta(shownEta?.etaS ?? null, shownEta?.etaTs ?? null, now);

  if (error && !job) {
    return (
      <section className="card">
        <h2>Job {jobId}</h2>
        <p role="alert" className="error">
          Cannot watch this job: {error.message}
        </p>
      </section>
    );
  }
  if (!job || !summary) {
    return (
      <section className="card" aria-busy="true">
        <h2>Job {jobId}</h2>
        <p className="hint">Loading…</p>
      </section>
    );
  }

  const percent = Math.round(job.percent);
  // Before the worker has told anything, a bar at 0 % would claim a measurement: indeterminate.
  const measured = summary.phase !== "queued" && summary.phase !== "starting";
  // Once ended there is no current operation (late ones from a split job's parts are stale).
  const operation = finished ? "" : (job.currentOperation ?? IDLE_OPERATION[summary.phase] ?? "Waiting for the worker…");

  async function cancel() {
    setCancelling(true);
    setActionError(null);
    try {
      await cancelJob(token(), jobId);
    } catch (e) {
      setActionError(e instanceof Error ? e.message : String(e));
    } finally {
      setCancelling(false);
    }
  }

  return (
    <section className="card job" aria-labelledby={`${id}-h`} data-status={job.status}>
      <div className="job-head">
        <h2 id={`${id}-h`}>{job.documentId ?? `Job ${jobId}`}</h2>
        <span className={`pill pill--${job.status}`} data-testid="job-status">
          {statusLabel(job.status)}
        </span>
        {presence && (
          <span
            className="watching"
            data-testid="watching"
            title={presence.users?.length ? presence.users.join(", ") : undefined}
          >
            {watchingLabel(presence.watching)}
          </span>
        )}
      </div>
      <progress
        id={`${id}-bar`}
        className="bar"
        max={100}
        {...(measured ? { value: percent } : {})}
        aria-label="Job progress"
        data-phase={summary.phase}
      />
      <p className="progress-text" aria-live="polite" data-testid="progress-text" data-phase={summary.phase}>
        {summary.text}
        {eta != null && (
          <span data-testid="eta" data-estimated={shownEta?.estimated ? "true" : "false"}>
            {" "}
            · about {formatDuration(eta)} left
          </span>
        )}
      </p>
      <p className="operation" data-testid="current-operation">
        {operation}
      </p>
      {job.error && (
        <p role="alert" className="error">
          {job.status === "cancelled" ? "Cancelled" : `${job.error.type}: ${job.error.message}`}
          {job.error.lost ? " (the worker was lost)" : ""}
        </p>
      )}
      {job.status === "completed" && job.resultSummary && <p className="ok">{job.resultSummary}</p>}
      <div className="button-row">
        <button type="button" onClick={() => void cancel()} disabled={finished || cancelling}>
          {cancelling ? "Cancelling…" : "Cancel job"}
        </button>
      </div>
      {actionError && (
        <p role="alert" className="error">
          {actionError}
        </p>
      )}

      <h3>Pages and zones</h3>
      <ZoneMap
        zones={job.zones}
        pages={job.pages}
        progress={summary.pages}
        status={job.status}
        images={images}
        loadZone={loadZone}
      />

      <h3>Exports</h3>
      <Exports job={job} token={token} />

      <h3 id={`${id}-log`}>Event log</h3>
      <EventLog lines={log.lines} version={logVersion} labelledBy={`${id}-log`} />
    </section>
  );
}
