import { useEffect, useId, useRef, useState, type KeyboardEvent } from "react";
import type { ZoneView } from "../../client/index";
import { ApiError, type ZoneContent } from "../api";

/** Loads a zone's extracted content (`fetchZoneContent` with the job and token bound). */
export type ZoneContentLoader = (zoneId: string, signal: AbortSignal) => Promise<ZoneContent>;

/** Retry delays while the zone's page has not finished (`not_ready`), in ms. */
export const ZONE_RETRY = {
  /** First delay. */ minDelay: 250,
  /** Delays double up to this. */ maxDelay: 2_000,
};

/** How a zone's status reads in the panel. */
const STATUS_TEXT: Record<ZoneView["status"] | "stopped", string> = {
  pending: "pending",
  processing: "being processed",
  completed: "done",
  failed: "failed",
  stopped: "not processed (the job ended first)",
};

type Content =
  | { state: "waiting" }
  | { state: "ready"; content: ZoneContent }
  | { state: "unavailable"; reason: string };

/**
 * One zone: what the job's events say of it (kind, status, tool, confidence, time, the one-line
 * summary), and once it is done, its whole text, table or figure, loaded from the web app (and
 * retried while its page is still being processed). Live: a zone still pending shows its
 * content as soon as it completes.
 *
 * A non-modal dialog: focus moves into it when it opens; Escape or the close button closes it
 * (`onClose`; the opener gets focus back).
 */
export function ZoneDetails({
  zone,
  load,
  jobEnded,
  onClose,
}: {
  zone: ZoneView;
  /** Loads the zone's content; without it only what the events say is shown. */
  load?: ZoneContentLoader;
  /** The job has ended: unfinished zones will not finish, and missing content will not come. */
  jobEnded: boolean;
  onClose: () => void;
}) {
  const id = useId();
  const panel = useRef<HTMLElement>(null);
  const done = zone.status === "completed" || zone.status === "failed";
  const [content, setContent] = useState<Content>({ state: "waiting" });
  const loaded = useRef(false);

  useEffect(() => {
    panel.current?.focus();
  }, []);

  useEffect(() => {
    if (!done || !load || loaded.current) return;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let delay = ZONE_RETRY.minDelay;
    const attempt = () => {
      load(zone.zone_id, controller.signal).then(
        (result) => {
          if (controller.signal.aborted) return;
          loaded.current = true;
          setContent({ state: "ready", content: result });
        },
        (error: unknown) => {
          if (controller.signal.aborted) return;
          // Not ready: its page is still being processed. Once the job has ended it never will
          // be (the effect runs once more when the job ends, for a page that finished just then).
          if (error instanceof ApiError && error.code === "not_ready" && !jobEnded) {
            timer = setTimeout(attempt, delay);
            delay = Math.min(2 * delay, ZONE_RETRY.maxDelay);
            return;
          }
          setContent({ state: "unavailable", reason: error instanceof Error ? error.message : String(error) });
        },
      );
    };
    attempt();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [zone.zone_id, done, load, jobEnded]);

  const shown = jobEnded && !done ? "stopped" : zone.status;
  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      onClose();
    }
  };

  return (
    <section
      ref={panel}
      className="zone-details"
      role="dialog"
      aria-modal="false"
      aria-labelledby={`${id}-h`}
      tabIndex={-1}
      onKeyDown={onKeyDown}
      data-testid="zone-details"
      data-zone={zone.zone_id}
    >
      <div className="zone-details-head">
        <h4 id={`${id}-h`}>
          Zone {zone.zone_id}
          {zone.kind ? ` (${zone.kind})` : ""}
        </h4>
        <button type="button" onClick={onClose} aria-label="Close zone details">
          ×
        </button>
      </div>
      <dl className="zone-facts">
        <dt>Kind</dt>
        <dd>{zone.kind ?? "—"}</dd>
        <dt>Page</dt>
        <dd>{zone.page ?? "—"}</dd>
        <dt>Status</dt>
        <dd data-testid="zone-status">{STATUS_TEXT[shown]}</dd>
        <dt>Tool</dt>
        <dd>{zone.processing_tool ?? "—"}</dd>
        <dt>Confidence</dt>
        <dd>{zone.confidence != null ? `${Math.round(zone.confidence * 100)}%` : "—"}</dd>
        <dt>Time</dt>
        <dd>{zone.duration_ms != null ? `${zone.duration_ms} ms` : "—"}</dd>
      </dl>
      <div className="zone-content" aria-live="polite" data-testid="zone-content" data-state={done ? content.state : "not-done"}>
        {!done ? (
          <p className="hint">{jobEnded ? "This zone was not processed." : "Not extracted yet: its text appears here once it is done."}</p>
        ) : (
          <DoneContent zone={zone} content={load ? content : { state: "unavailable", reason: "" }} />
        )}
      </div>
    </section>
  );
}

function DoneContent({ zone, content }: { zone: ZoneView; content: Content }) {
  const error = zone.error ?? (content.state === "ready" ? content.content.error : null);
  if (content.state !== "ready") {
    return (
      <>
        {error && <p className="error">{error}</p>}
        {zone.summary && <blockquote className="zone-summary">{zone.summary}</blockquote>}
        {content.state === "waiting" ? (
          <p className="hint">Loading the extracted content…</p>
        ) : (
          content.reason && <p className="hint">The extracted content is not available: {content.reason}</p>
        )}
      </>
    );
  }
  const { rows, text, figure, notes } = content.content;
  return (
    <>
      {error && <p className="error">{error}</p>}
      {figure && (
        <p>
          Figure, {Math.round(figure.width)}×{Math.round(figure.height)} pt
          {figure.pixel_width && figure.pixel_height ? ` (image ${figure.pixel_width}×${figure.pixel_height} px)` : ""}
        </p>
      )}
      {rows && rows.length > 0 ? (
        <ZoneTableContent rows={rows} />
      ) : (
        text && <p className="zone-text" data-testid="zone-text">{text}</p>
      )}
      {!rows && !text && !figure && !error && <p className="hint">No text was found in this zone.</p>}
      {notes.length > 0 && (
        <ul className="zone-notes">
          {notes.map((note) => (
            <li key={note}>{note}</li>
          ))}
        </ul>
      )}
    </>
  );
}

/** A table's rows, the first as its header (as the Markdown export does). */
function ZoneTableContent({ rows }: { rows: string[][] }) {
  const [head, ...body] = rows;
  return (
    <div className="zone-table-content">
      <table data-testid="zone-rows">
        <thead>
          <tr>
            {(head ?? []).map((cell, i) => (
              <th key={i} scope="col">
                {cell}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {body.map((row, r) => (
            <tr key={r}>
              {row.map((cell, c) => (
                <td key={c}>{cell}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Keys that open a focused zone: Enter, as a button does (and Space). */
export function opensZone(event: KeyboardEvent): boolean {
  return event.key === "Enter" || event.key === " ";
}
