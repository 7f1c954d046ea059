import { useEffect, useId, useMemo, useState } from "react";
import { fromSnapshot, type JobState, type ProgressClient } from "../../client/index";
import { useJobList } from "../../react/index";
import { listJobs } from "../api";
import { statusLabel } from "./format";

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
    return [...byId.values()].sort((a, b) => (b.createdTs ?? 0) - (a.createdTs ?? 0));
  }, [loaded, live.jobs]);

  return (
    <nav className="card" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Your jobs</h2>
      {error && <p className="error">Could not load jobs: {error}</p>}
      {jobs.length === 0 ? (
        <p className="hint">No jobs yet.</p>
      ) : (
        <ul className="job-list">
          {jobs.map((job) => (
            <li key={job.jobId}>
              <button
                type="button"
                className="job-item"
                aria-current={job.jobId === selected ? "true" : undefined}
                onClick={() => onSelect(job.jobId)}
              >
                <span className="job-name">{job.documentId ?? job.jobId}</span>
                <span className={`pill pill--${job.status}`}>{statusLabel(job.status)}</span>
                <span className="job-pct">{Math.round(job.percent)}%</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </nav>
  );
}
