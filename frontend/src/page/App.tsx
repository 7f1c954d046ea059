import { useCallback, useEffect, useState } from "react";
import { ConnectionBanner } from "./components/ConnectionBanner";
import { JobList } from "./components/JobList";
import { JobView } from "./components/JobView";
import { SignIn } from "./components/SignIn";
import { Upload } from "./components/Upload";
import { useProgressClient, useSession } from "./session";
import { consumeLink } from "./signInLink";

function jobFromHash(): string | null {
  return new URLSearchParams(window.location.hash.replace(/^#/, "")).get("job") || null;
}

/** The job page: sign in, upload a PDF, pick a job, watch it live. */
export function App() {
  const [session, setSession] = useSession();
  const { client, latestToken } = useProgressClient(session);
  const [jobId, setJobId] = useState<string | null>(jobFromHash);

  useEffect(() => {
    const onHash = () => setJobId(jobFromHash());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  const select = useCallback((id: string) => {
    window.location.hash = `job=${encodeURIComponent(id)}`;
    setJobId(id);
  }, []);

  if (!session) {
    return (
      <div className="app">
        <header className="app-header">
          <h1>PDF jobs</h1>
        </header>
        <main>
          <SignIn onSignedIn={setSession} expiredLinkUser={consumeLink().expiredUser} />
        </main>
      </div>
    );
  }

  return (
    <div className="app">
      <header className="app-header">
        <h1>PDF jobs</h1>
        <p className="who">
          Signed in as <strong>{session.user}</strong>{" "}
          <button type="button" className="link" onClick={() => setSession(null)}>
            Sign out
          </button>
        </p>
      </header>
      {client && <ConnectionBanner client={client} />}
      <main className="layout">
        <div className="sidebar">
          <Upload token={latestToken} onUploaded={select} />
          {client && (
            <JobList client={client} user={session.user} token={latestToken} selected={jobId} onSelect={select} />
          )}
        </div>
        <div className="content">
          {client && jobId ? (
            <JobView key={jobId} client={client} jobId={jobId} token={latestToken} />
          ) : (
            <p className="hint">Upload a PDF or pick a job to watch its progress.</p>
          )}
        </div>
      </main>
    </div>
  );
}
