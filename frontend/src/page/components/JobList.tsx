import { useEffect, useId, useMemo, useState } from "react";
import { fromSnapshot, type JobState, type ProgressClient } from "../../client/index";
import { useJobList } from "../../react/index";
import { listJobs } from "../api";
import { formatUploadTime, statusLabel } from "./format";

/** A job as the list shows it: its name, numbered when the same file was uploaded again. */
export interface ListedJob {
  job: JobState;
  /** The document's name, with " (2)", " (3)", … for later uploads of the same name. */
  name: string;
}

/** Newest first; the n-th upload (oldest first) of a name gets " (n)" from the second on. */
export function listedJobs(jobs: readonly JobState[]): ListedJob[] {
  const oldestFirst = [...jobs].sort((a, b) => (a.createdTs ?? 0) - (b.createdTs ?? 0));
  const seen = new Map<string, number>();
  const listed = oldestFirst.map((job) => {
    const base = job.documentId ?? job.jobId;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return { job, name: n > 1 ? `${base} (${n})` : base };
  });
  return listed.reverse();
}

/** The user's jobs: loaded over HTTP first, then live through the `user:<name>` room. */
export function JobList(props: {
  client: ProgressClient;
  user: string;
  token: () => string;
  selected: string | null;
  onSelect: (jobId: string) => void;
}) {
  const { client, user, token, selected, onSelect } = props;
  const id = useId();
  const live = useJobList(client, user);
  const [loaded, setLoaded] = useState<JobState[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let active = true;
    listJobs(token())
      .then((jobs) => active && setLoaded(jobs.map(fromSnapshot)))
      .catch((e: unknown) => active && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      active = false;
    };
  }, [token, user]);

  const jobs = useMemo(() => {
    const byId = new Map(loaded.map((j) => [j.jobId, j]));
    for (const j of live.jobs) byId.set(j.jobId, j); // Live state wins.
    return listedJobs([...byId.values()]);
  }, [loaded, live.jobs]);

  return (
    <nav className="card" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Your jobs</h2>
      {error && <p className="error">Could not load jobs: {error}</p>}
      {jobs.length === 0 ? (
        <p className="hint">No jobs yet.</p>
      ) : (
        <ul className="job-list" data-testid="job-list">
          {jobs.map(({ job, name }) => (
            <li key={job.jobId}>
              <button
                type="button"
                className="job-item"
                title={job.jobId}
                aria-current={job.jobId === selected ? "true" : undefined}
                onClick={() => onSelect(job.jobId)}
              >
                <span className="job-name">{name}</span>
                <span className={`pill pill--${job.status}`}>{statusLabel(job.status)}</span>
                <span className="job-pct">{Math.round(job.percent)}%</span>
                {job.createdTs != null && (
                  <time className="job-time" dateTime={new Date(job.createdTs * 1000).toISOString()}>
                    Uploaded {formatUploadTime(job.createdTs)}
                  </time>
                )}
              </button>
            </li>
          ))}
        </ul>
      )}
    </nav>
  );
}
