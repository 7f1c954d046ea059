import { useCallback, useEffect, useRef, useState } from "react";
import { ProgressClient } from "../client/index";
import { bridgeUrl, fetchToken } from "./api";
import { consumeLink } from "./signInLink";

/** Who is signed in (development stand-in: any user name gets a token). */
export interface Session {
  user: string;
  token: string;
}

const KEY = "progress-bridge.session";

function load(): Session | null {
  // A sign-in link (`#job=…&token=…`) wins over an earlier session in this tab.
  const link = consumeLink().signIn;
  if (link) {
    try {
      sessionStorage.setItem(KEY, JSON.stringify(link));
    } catch {
      // Storage disabled: signed in until the next reload.
    }
    return link;
  }
  try {
    const raw = sessionStorage.getItem(KEY);
    const value = raw ? (JSON.parse(raw) as Partial<Session>) : null;
    return value?.user && value.token ? { user: value.user, token: value.token } : null;
  } catch {
    return null;
  }
}

/** The session, kept in sessionStorage so a reload stays signed in; a sign-in link starts one. */
export function useSession(): [Session | null, (next: Session | null) => void] {
  const [session, setSession] = useState<Session | null>(load);
  const update = useCallback((next: Session | null) => {
    if (next) sessionStorage.setItem(KEY, JSON.stringify(next));
    else sessionStorage.removeItem(KEY);
    setSession(next);
  }, []);
  return [session, update];
}

/**
 * One ProgressClient per signed-in user, closed on sign-out. The token provider hands out the
 * sign-in token first and asks the API for a fresh one on every later connection (so an expired
 * token, close 4001, is replaced). `latestToken()` is the one REST calls should use.
 */
export function useProgressClient(session: Session | null): {
  client: ProgressClient | null;
  latestToken: () => string;
} {
  const [client, setClient] = useState<ProgressClient | null>(null);
  const token = useRef(session?.token ?? "");
  useEffect(() => {
    if (!session) return;
    token.current = session.token;
    let first: string | null = session.token;
    const c = new ProgressClient({
      url: bridgeUrl(),
      token: async () => {
        if (first) {
          const t = first;
          first = null;
          return t;
        }
        token.current = await fetchToken(session.user);
        return token.current;
      },
    });
    c.connect();
    setClient(c);
    return () => {
      c.close();
      setClient(null);
    };
  }, [session]);
  const latestToken = useCallback(() => token.current, []);
  return { client, latestToken };
}
