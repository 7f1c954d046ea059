/** What a refused SSE stream means, as the WebSocket would have met it: plain values. */
import { describe, expect, it } from "vitest";
import { CloseCode, ErrorCode } from "../src/client/index";
import { askWhyRefused, NO_ANSWER, refusalAction, type FetchLike } from "../src/client/sseRefusal";

describe("a refused SSE stream", () => {
  it("ends the connection as the close code the WebSocket would have met", () => {
    const detail = { detail: "nope" };
    expect(refusalAction({ status: 401, body: detail }, true)).toEqual({
      kind: "close",
      code: CloseCode.UNAUTHENTICATED,
      reason: "nope",
      violation: null,
    });
    // The origin's 403 stops the client even for a stream of one subscribe.
    expect(refusalAction({ status: 403, body: { code: "forbidden_origin" } }, true)).toMatchObject({
      kind: "close",
      code: CloseCode.FORBIDDEN,
      reason: "HTTP 403",
    });
    expect(refusalAction({ status: 429, body: {} }, false)).toMatchObject({ code: CloseCode.TOO_MANY_CONNECTIONS });
    expect(refusalAction({ status: 503, body: {} }, false)).toMatchObject({ code: CloseCode.INTERNAL });
    expect(refusalAction(NO_ANSWER, false)).toEqual({
      kind: "close",
      code: CloseCode.ABNORMAL,
      reason: "no answer",
      violation: null,
    });
  });

  it("answers the stream's one subscribe with the error frame's code: the bridge's own, else the status's", () => {
    expect(refusalAction({ status: 404, body: { detail: "gone" } }, true)).toEqual({
      kind: "error",
      code: ErrorCode.NOT_FOUND,
      message: "gone",
    });
    expect(refusalAction({ status: 403, body: {} }, true)).toMatchObject({ code: ErrorCode.FORBIDDEN });
    expect(refusalAction({ status: 400, body: { code: "bogus" } }, true)).toMatchObject({ code: ErrorCode.BAD_FRAME });
    expect(refusalAction({ status: 400, body: { code: ErrorCode.NOT_FOUND } }, true)).toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
  });

  it("reports a 400, 403 or 404 of a stream of several subscribes as a bug, then reconnects", () => {
    expect(refusalAction({ status: 400, body: { detail: "bad" } }, false)).toEqual({
      kind: "close",
      code: CloseCode.INTERNAL,
      reason: "bad",
      violation: "SSE stream refused with HTTP 400: bad",
    });
    expect(refusalAction({ status: 404, body: {} }, false)).toMatchObject({
      code: CloseCode.ABNORMAL,
      violation: "SSE stream refused with HTTP 404: HTTP 404",
    });
  });

  it("is learnt by asking once more: the status, the JSON body of a refusal, and never a stream kept open", async () => {
    const signals: AbortSignal[] = [];
    const answering =
      (status: number, text: string): FetchLike =>
      (_url, init) => {
        signals.push(init.signal);
        return Promise.resolve({ status, text: () => Promise.resolve(text) });
      };
    await expect(askWhyRefused(answering(401, '{"detail": "expired", "code": "x"}'), "u")).resolves.toEqual({
      status: 401,
      body: { detail: "expired", code: "x" },
    });
    await expect(askWhyRefused(answering(500, "<html>"), "u")).resolves.toEqual({ status: 500, body: {} });
    await expect(askWhyRefused(answering(200, "data: ..."), "u")).resolves.toEqual({ status: 200, body: {} });
    await expect(askWhyRefused(() => Promise.reject(new Error("down")), "u")).resolves.toEqual(NO_ANSWER);
    expect(signals.every((signal) => signal.aborted)).toBe(true);
  });
});
