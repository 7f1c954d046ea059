import { memo, useState } from "react";
import type { LogLine } from "../eventLog";

/** Lines rendered at most, newest kept; the rest is one click away. */
export const SHOWN_LINES = 500;

const Line = memo(function Line({ line }: { line: LogLine }) {
  return (
    <li data-key={line.key}>
      <time>{line.time}</time> {line.text}
    </li>
  );
});

/**
 * The log's newest `SHOWN_LINES` lines (all of them on request). `lines` changes in place:
 * `version` says when, and is what this component re-renders on.
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
  const hidden = showAll ? 0 : Math.max(0, lines.length - SHOWN_LINES);
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
      <ol className="log" aria-labelledby={labelledBy} data-testid="event-log">
        {shown.map((line) => (
          <Line key={line.key} line={line} />
        ))}
      </ol>
    </>
  );
});
