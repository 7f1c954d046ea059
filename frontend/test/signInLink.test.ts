/** Sign-in links (`#job=…&token=…`, printed by `progress-bridge dev --demo`): read, then gone. */
import { describe, expect, it } from "vitest";
import { readLink } from "../src/page/signInLink";

function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) =>
    Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}.signature`;
}

describe("readLink", () => {
  const now = 1_800_000_000;

  it("signs in as the token's user on the linked job, and leaves the token out of the new hash", () => {
    const token = jwt({ sub: "demo", iat: now, exp: now + 900 });
    const link = readLink(`#job=pdf-123&token=${token}`, now);
    expect(link).toEqual({
      jobId: "pdf-123",
      signIn: { user: "demo", token },
      expiredUser: null,
      cleanHash: "#job=pdf-123",
    });
  });

  it("says whose link expired instead of signing in with it", () => {
    const link = readLink(`#job=pdf-123&token=${jwt({ sub: "demo", exp: now - 1 })}`, now);
    expect(link.signIn).toBeNull();
    expect(link.expiredUser).toBe("demo");
    expect(link.cleanHash).toBe("#job=pdf-123");
  });

  it("ignores a malformed token but still removes it, and leaves a plain job hash alone", () => {
    expect(readLink("#job=pdf-1&token=not-a-jwt", now)).toEqual({
      jobId: "pdf-1",
      signIn: null,
      expiredUser: null,
      cleanHash: "#job=pdf-1",
    });
    expect(readLink("#token=" + jwt({ sub: "demo", exp: now + 5 }), now).cleanHash).toBe("");
    expect(readLink("#job=pdf-1", now)).toEqual({ jobId: "pdf-1", signIn: null, expiredUser: null, cleanHash: null });
    expect(readLink("", now).jobId).toBeNull();
  });
});
