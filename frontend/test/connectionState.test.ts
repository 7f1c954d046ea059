/** The transition table of the connection state: plain values, no sockets. */
import { describe, expect, it } from "vitest";
import { canTransition, checkTransition, followState } from "../src/client/connectionState";
import {
  IllegalTransitionError,
  ProgressClientError,
  STATE_TRANSITIONS,
  type ClientState,
} from "../src/client/index";

const STATES: readonly ClientState[] = ["idle", "connecting", "open", "reconnecting", "closed"];

/** The documented table (frontend/README.md, "Connection states"), written out pair by pair. */
const ALLOWED = new Set([
  "idle->connecting",
  "idle->closed",
  "connecting->open",
  "connecting->reconnecting",
  "connecting->closed",
  "open->reconnecting",
  "open->closed",
  "reconnecting->open",
  "reconnecting->closed",
  "closed->connecting",
]);

describe("state transitions", () => {
  it("the table lists every state, and allows exactly the documented moves", () => {
    expect(Object.keys(STATE_TRANSITIONS).sort()).toEqual([...STATES].sort());
    for (const prev of STATES) {
      for (const next of STATES) {
        if (prev === next) continue;
        expect(canTransition(prev, next), `${prev} -> ${next}`).toBe(ALLOWED.has(`${prev}->${next}`));
      }
    }
  });

  it("a move to the current state is always allowed (it is no transition)", () => {
    for (const state of STATES) {
      expect(canTransition(state, state)).toBe(true);
      expect(() => checkTransition(state, state)).not.toThrow();
    }
  });

  it("nothing leads back to idle, and closed only leads to connecting", () => {
    for (const prev of STATES) if (prev !== "idle") expect(canTransition(prev, "idle")).toBe(false);
    expect(STATE_TRANSITIONS.closed).toEqual(["connecting"]);
  });

  it("an illegal move throws an IllegalTransitionError naming both states", () => {
    // A late hello after close() would be "closed -> open".
    let caught: unknown;
    try {
      checkTransition("closed", "open");
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(IllegalTransitionError);
    expect(caught).toBeInstanceOf(ProgressClientError);
    const error = caught as IllegalTransitionError;
    expect(error.name).toBe("IllegalTransitionError");
    expect(String(error)).toBe("IllegalTransitionError: illegal state transition: closed -> open");
    expect([error.from, error.to]).toEqual(["closed", "open"]);
    expect(() => checkTransition("open", "connecting")).toThrow(IllegalTransitionError);
    expect(() => checkTransition("reconnecting", "idle")).toThrow("illegal state transition: reconnecting -> idle");
  });
});

describe("the client's state, following the transport in use", () => {
  it("is the transport's, except that a transport starting afresh after the client connected is reconnecting", () => {
    expect(followState("idle", "connecting")).toBe("connecting");
    expect(followState("closed", "connecting")).toBe("connecting");
    expect(followState("connecting", "connecting")).toBe("connecting"); // the WebSocket's first attempt failed over to SSE
    expect(followState("reconnecting", "connecting")).toBe("reconnecting"); // SSE starts after WebSocket retries
    expect(followState("open", "connecting")).toBe("reconnecting");
    expect(followState("reconnecting", "open")).toBe("open");
    expect(followState("open", "closed")).toBe("closed");
    expect(followState("open", "idle")).toBe("open"); // a transport never started says nothing
  });

  it("never makes a move the table forbids", () => {
    for (const current of STATES) {
      for (const inner of STATES) {
        // An idle or closed client has no transport open or retrying: it follows a start first.
        if ((current === "idle" || current === "closed") && (inner === "open" || inner === "reconnecting")) continue;
        const next = followState(current, inner);
        expect(canTransition(current, next), `${current} + ${inner} -> ${next}`).toBe(true);
      }
    }
  });
});
