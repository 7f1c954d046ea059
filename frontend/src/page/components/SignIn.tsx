import { useId, useState, type FormEvent } from "react";
import { fetchToken } from "../api";
import type { Session } from "../session";

/**
 * Development sign-in stand-in: a user name is exchanged for a token. `expiredLinkUser`: the page
 * was opened with a sign-in link whose token has expired (says so, with that user filled in).
 */
export function SignIn({
  onSignedIn,
  expiredLinkUser = null,
}: {
  onSignedIn: (session: Session) => void;
  expiredLinkUser?: string | null;
}) {
  const id = useId();
  const [user, setUser] = useState(expiredLinkUser ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const name = user.trim();
    if (!name) return;
    setBusy(true);
    setError(null);
    try {
      onSignedIn({ user: name, token: await fetchToken(name) });
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card sign-in" onSubmit={(e) => void submit(e)} aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Sign in</h2>
      {expiredLinkUser && (
        <p role="status" className="notice">
          The sign-in link has expired: sign in again to watch the job.
        </p>
      )}
      <p className="hint">Development stand-in: any user name gets a token.</p>
      <label htmlFor={`${id}-user`}>User name</label>
      <input
        id={`${id}-user`}
        name="user"
        autoComplete="username"
        required
        value={user}
        onChange={(e) => setUser(e.target.value)}
      />
      <button type="submit" disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </form>
  );
}
