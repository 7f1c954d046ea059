import { memo, useLayoutEffect, useRef, useState, type CSSProperties } from "react";
import type { LogLine } from "../eventLog";

/** Lines rendered at most, newest kept; the rest is one click away. */
export const SHOWN_LINES = 500;

/**
 * Older lines are hidden this many at a time (so 401–500 lines are shown): dropping the first
 * line on every new one would renumber and re-lay out the whole list each frame.
 */
const HIDE_STEP = 100;

/** Within this many px of the bottom, the reader counts as following the newest line. */
export const FOLLOW_SLACK_PX = 8;

/** Whether a scroll box is at (or within `FOLLOW_SLACK_PX` of) its bottom. */
export function isAtBottom(box: Pick<HTMLElement, "scrollTop" | "clientHeight" | "scrollHeight">): boolean {
  return box.scrollHeight - box.scrollTop - box.clientHeight <= FOLLOW_SLACK_PX;
}

const Line = memo(function Line({ line }: { line: LogLine }) {
  return (
    <li data-key={line.key}>
      <time>{line.time}</time> {line.text}
    </li>
  );
});

/**
 * The log's newest lines, at most `SHOWN_LINES` (all of them on request), numbered from where
 * they are in the whole log. `lines` changes in place: `version` says when, and is what this
 * component re-renders on. The list follows the newest line unless the reader has scrolled up
 * (scrolling back to the bottom follows again). The numbers get as much room as the largest
 * needs ("1701." whole, not clipped by the box).
 */
export const EventLog = memo(function EventLog({
  lines,
  version,
  labelledBy,
}: {
  lines: readonly LogLine[];
  version: number;
  labelledBy: string;
}) {
  const [showAll, setShowAll] = useState(false);
  const box = useRef<HTMLOListElement>(null);
  const follow = useRef(true);
  const hidden =
    showAll || lines.length <= SHOWN_LINES ? 0 : Math.ceil((lines.length - SHOWN_LINES) / HIDE_STEP) * HIDE_STEP;
  const shown = hidden > 0 ? lines.slice(hidden) : lines;

  // After each change, before the browser paints: back to the bottom if the reader was there.
  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow.current) el.scrollTop = el.scrollHeight;
  }, [version, showAll]);

  const digits = String(Math.max(1, lines.length)).length;
  return (
    <>
      {hidden > 0 && (
        <p className="hint log-hidden">
          {hidden === 1 ? "1 earlier line hidden." : `${hidden} earlier lines hidden.`}{" "}
          <button type="button" className="link" onClick={() => setShowAll(true)}>
            Show all
          </button>
        </p>
      )}
      <ol
        ref={box}
        className="log"
        aria-labelledby={labelledBy}
        data-testid="event-log"
        start={hidden + 1}
        style={{ "--log-digits": digits } as CSSProperties}
        onScroll={(e) => {
          follow.current = isAtBottom(e.currentTarget);
        }}
      >
        {shown.map((line) => (
          <Line key={line.key} line={line} />
        ))}
      </ol>
    </>
  );
});
