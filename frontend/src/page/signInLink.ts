/**
 * Sign-in links: `#job=<id>&token=<jwt>` (what `progress-bridge dev --demo` prints) opens a job
 * signed in as the token's user.
 *
 * The token rides in the fragment, which the browser never sends to a server. The page reads it
 * once at start-up, keeps it in the session (sessionStorage, like a typed sign-in) and removes it
 * from the address bar at once (`history.replaceState`), so it does not stay in the history, a
 * bookmark or a copied URL. The user name is the token's `sub`, read here without verifying the
 * signature: the server verifies the token on every use, so a forged one gets nothing.
 */

/** What a location hash says. */
export interface LinkInfo {
  /** The job to open, if the hash names one. */
  jobId: string | null;
  /** The token's user and the token, when the hash carries a usable token. */
  signIn: { user: string; token: string } | null;
  /** The token's user, when the hash carried a token that has expired. */
  expiredUser: string | null;
  /** The hash to show instead (the token left out), or `null` when it carried none. */
  cleanHash: string | null;
}

function claimsOf(token: string): { sub?: unknown; exp?: unknown } | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const claims: unknown = JSON.parse(atob(padded));
    return claims && typeof claims === "object" ? (claims as { sub?: unknown; exp?: unknown }) : null;
  } catch {
    return null;
  }
}

/** Read `hash` (e.g. `location.hash`) at `nowS` (seconds since the epoch). Pure. */
export function readLink(hash: string, nowS: number): LinkInfo {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const jobId = params.get("job") || null;
  const token = params.get("token");
  if (token === null) return { jobId, signIn: null, expiredUser: null, cleanHash: null };
  const cleanHash = jobId ? `#job=${encodeURIComponent(jobId)}` : "";
  const claims = claimsOf(token);
  const user = typeof claims?.sub === "string" && claims.sub ? claims.sub : null;
  const exp = typeof claims?.exp === "number" ? claims.exp : null;
  if (!user || exp === null) return { jobId, signIn: null, expiredUser: null, cleanHash };
  if (exp <= nowS) return { jobId, signIn: null, expiredUser: user, cleanHash };
  return { jobId, signIn: { user, token }, expiredUser: null, cleanHash };
}

let consumed: LinkInfo | null = null;

/**
 * Read the page's own address once (later calls return the same answer) and take the token out
 * of the address bar.
 */
export function consumeLink(): LinkInfo {
  if (consumed) return consumed;
  consumed = readLink(window.location.hash, Date.now() / 1000);
  if (consumed.cleanHash !== null) {
    const { pathname, search } = window.location;
    window.history.replaceState(window.history.state, "", `${pathname}${search}${consumed.cleanHash}`);
  }
  return consumed;
}
