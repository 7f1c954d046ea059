/** Close codes come from the generated server codes; each has a decided reaction. */
import { describe, expect, it } from "vitest";
import { CloseCode, closeAction, SERVER_CLOSE_ACTIONS } from "../src/client/index";
import { CloseCode as Generated } from "../src/generated/constants";

describe("close codes", () => {
  it("are the bridge's generated codes plus the browser's 1001 and 1006", () => {
    const { GOING_AWAY, ABNORMAL, ...server } = CloseCode;
    expect(server).toEqual(Generated);
    expect([GOING_AWAY, ABNORMAL]).toEqual([1001, 1006]);
    expect(Object.keys(SERVER_CLOSE_ACTIONS).map(Number).sort()).toEqual(Object.values(Generated).sort());
  });

  it("stop on 1000 and 4003, reauthenticate on 4001, and reconnect on anything else", () => {
    expect(closeAction(CloseCode.NORMAL)).toBe("stop");
    expect(closeAction(CloseCode.FORBIDDEN)).toBe("stop");
    expect(closeAction(CloseCode.UNAUTHENTICATED)).toBe("reauthenticate");
    for (const code of [CloseCode.ABNORMAL, CloseCode.GOING_AWAY, CloseCode.RESTART, CloseCode.SLOW_CONSUMER, 4999]) {
      expect(closeAction(code), String(code)).toBe("reconnect");
    }
  });
});
