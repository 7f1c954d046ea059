import { memo, useState } from "react";
import type { LogLine } from "../eventLog";

/** Lines rendered at most, newest kept; the rest is one click away. */
export const SHOWN_LINES = 500;

/**
 * Older lines are hidden this many at a time (so 401–500 lines are shown): dropping the first
 * line on every new one would renumber and re-lay out the whole list each frame.
 */
const HIDE_STEP = 100;

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
 * component re-renders on.
 */
export const EventLog = memo(function EventLog({
  lines,
  labelledBy,
}: {
  lines: readonly LogLine[];
  version: number;
  labelledBy: string;
}) {
  const [showAll, setShowAll] = useState(false);
  const hidden =
    showAll || lines.length <= SHOWN_LINES ? 0 : Math.ceil((lines.length - SHOWN_LINES) / HIDE_STEP) * HIDE_STEP;
  const shown = hidden > 0 ? lines.slice(hidden) : lines;
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
      <ol className="log" aria-labelledby={labelledBy} data-testid="event-log" start={hidden + 1}>
        {shown.map((line) => (
          <Line key={line.key} line={line} />
        ))}
      </ol>
    </>
  );
});
