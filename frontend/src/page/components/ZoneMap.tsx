import { memo, useMemo, useState } from "react";
import { isFinished, type JobState, type ZoneView } from "../../client/index";
import type { JobStatus, PageInfo } from "../../generated/events";
import type { PageProgress, PageState } from "../jobSummary";

/** US Letter in points: used for pages whose size the job has not reported. */
const DEFAULT_PAGE = { width: 612, height: 792 };

/** How a zone is shown: its status, or `stopped` when the job ended without reaching its end. */
type ShownStatus = ZoneView["status"] | "stopped";

const STATUS_TEXT: Record<ShownStatus, string> = {
  pending: "pending",
  processing: "processing",
  completed: "done",
  failed: "failed",
  stopped: "not processed",
};

/** Captions of pages without zone boxes. */
const PAGE_TEXT: Partial<Record<PageState, string>> = {
  waiting: "waiting",
  "not-reached": "not reached",
};

/**
 * Each page's outline to scale, with its zone boxes coloured by status, and every page up to the
 * document's known page count: those not declared yet are "waiting", or "not reached" once the
 * job has ended; zones a stopped job never finished are "not processed". Re-renders only when
 * the job's zones or pages change, and then only the pages whose zones changed (the reducer
 * keeps every unchanged zone object as it was).
 */
export const ZoneMap = memo(function ZoneMap({
  zones: byId,
  pages: declared,
  progress,
  status,
}: {
  zones: JobState["zones"];
  pages: JobState["pages"];
  /** Every page's state (`summarizeJob`), in page order. */
  progress: readonly PageProgress[];
  /** The job's status: zones a stopped job left unfinished are shown as not processed. */
  status: JobStatus;
}) {
  const stopped = isFinished({ status }) && status !== "completed";
  const zones = useMemo(() => Object.values(byId).sort((a, b) => a.index - b.index), [byId]);
  const { sizes, onPage, unplaced } = useMemo(() => {
    const sizes = new Map<number, PageInfo>(declared.map((p) => [p.number, p]));
    const onPage = new Map<number, ZoneView[]>();
    const unplaced: ZoneView[] = [];
    for (const z of zones) {
      if (z.page == null) {
        unplaced.push(z);
        continue;
      }
      const list = onPage.get(z.page);
      if (list) list.push(z);
      else onPage.set(z.page, [z]);
    }
    return { sizes, onPage, unplaced };
  }, [zones, declared]);

  if (progress.length === 0) {
    return <p className="hint">No zones yet.</p>;
  }
  const shown: ShownStatus[] = ["pending", "processing", "completed", "failed", ...(stopped ? (["stopped"] as const) : [])];
  // Pages not declared yet take the size of the last declared one (documents rarely mix sizes).
  const typical = declared.at(-1) ?? DEFAULT_PAGE;
  return (
    <div>
      <ul className="legend" aria-label="Legend">
        {shown.map((s) => (
          <li key={s}>
            <span className={`swatch zone--${s}`} aria-hidden="true" /> {STATUS_TEXT[s]}
          </li>
        ))}
      </ul>
      <div className="pages">
        {progress.map((page) => {
          const caption = PAGE_TEXT[page.state];
          if (caption) {
            return <BlankPage key={page.number} number={page.number} state={page.state} caption={caption} size={typical} />;
          }
          const size = sizes.get(page.number) ?? DEFAULT_PAGE;
          return (
            <PageMap
              key={page.number}
              number={page.number}
              width={size.width}
              height={size.height}
              state={page.state}
              stopped={stopped}
              zones={onPage.get(page.number) ?? NO_ZONES}
            />
          );
        })}
      </div>
      <ZoneTable zones={zones} unplaced={unplaced.length} stopped={stopped} />
    </div>
  );
});

const NO_ZONES: readonly ZoneView[] = Object.freeze([]);

/** True when both lists hold the same zone objects in the same order. */
function sameZones(a: readonly ZoneView[], b: readonly ZoneView[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A page the job has not declared: its outline only, and why it has no zones. */
const BlankPage = memo(function BlankPage(props: {
  number: number;
  state: PageState;
  caption: string;
  size: { width: number; height: number };
}) {
  const { number, state, caption, size } = props;
  return (
    <figure className={`page page--${state}`} data-testid={`page-${number}`} data-state={state}>
      <div
        className="page-blank"
        style={{ aspectRatio: `${size.width} / ${size.height}` }}
        role="img"
        aria-label={`Page ${number}: ${caption}`}
      />
      <figcaption>
        Page {number} · {caption}
      </figcaption>
    </figure>
  );
});

interface PageMapProps {
  number: number;
  width: number;
  height: number;
  state: PageState;
  /** The job ended without completing: unfinished zones are shown as not processed. */
  stopped: boolean;
  zones: readonly ZoneView[];
}

/** One page and its zone boxes; re-renders only when one of its zones changed. */
const PageMap = memo(
  function PageMap({ number, width, height, state, stopped, zones }: PageMapProps) {
    const done = zones.filter((z) => z.status === "completed" || z.status === "failed").length;
    const label = `Page ${number}: ${done} of ${zones.length} zones done${state === "stopped" ? ", stopped" : ""}`;
    return (
      <figure className="page" data-testid={`page-${number}`} data-state={state}>
        <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
          <rect className="page-outline" x={0} y={0} width={width} height={height} />
          {zones
            .filter((z) => z.bbox)
            .map((z) => {
              const [x0, top, x1, bottom] = z.bbox as [number, number, number, number];
              const shown = shownStatus(z, stopped);
              return (
                <rect
                  key={z.zone_id}
                  className={`zone zone--${shown}`}
                  data-zone={z.zone_id}
                  data-status={shown}
                  x={x0}
                  y={top}
                  width={Math.max(1, x1 - x0)}
                  height={Math.max(1, bottom - top)}
                >
                  <title>{zoneTitle(z, shown)}</title>
                </rect>
              );
            })}
        </svg>
        <figcaption>
          Page {number} · {done}/{zones.length}
          {state === "stopped" ? " · stopped" : ""}
        </figcaption>
      </figure>
    );
  },
  (prev, next) =>
    prev.number === next.number &&
    prev.width === next.width &&
    prev.height === next.height &&
    prev.state === next.state &&
    prev.stopped === next.stopped &&
    sameZones(prev.zones, next.zones),
);

/** Every zone as a table row; the rows are rendered only while the section is open. */
function ZoneTable({ zones, unplaced, stopped }: { zones: readonly ZoneView[]; unplaced: number; stopped: boolean }) {
  const [open, setOpen] = useState(false);
  return (
    <details className="zone-table" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>Zones as a table ({zones.length})</summary>
      <table>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Zone</th>
            <th scope="col">Page</th>
            <th scope="col">Status</th>
            <th scope="col">Tool</th>
            <th scope="col">Confidence</th>
            <th scope="col">Time</th>
          </tr>
        </thead>
        <tbody>{open && zones.map((z) => <ZoneRow key={z.zone_id} zone={z} stopped={stopped} />)}</tbody>
      </table>
      {unplaced > 0 && <p className="hint">{unplaced} zone(s) without a page.</p>}
    </details>
  );
}

const ZoneRow = memo(function ZoneRow({ zone: z, stopped }: { zone: ZoneView; stopped: boolean }) {
  const shown = shownStatus(z, stopped);
  return (
    <tr data-status={shown}>
      <td>{z.index}</td>
      <td>
        {z.zone_id}
        {z.kind ? ` (${z.kind})` : ""}
      </td>
      <td>{z.page ?? "—"}</td>
      <td>{STATUS_TEXT[shown]}</td>
      <td>{z.processing_tool ?? "—"}</td>
      <td>{z.confidence != null ? `${Math.round(z.confidence * 100)}%` : "—"}</td>
      <td>{z.duration_ms != null ? `${z.duration_ms} ms` : "—"}</td>
    </tr>
  );
});

function shownStatus(z: ZoneView, stopped: boolean): ShownStatus {
  return stopped && (z.status === "pending" || z.status === "processing") ? "stopped" : z.status;
}

function zoneTitle(z: ZoneView, shown: ShownStatus): string {
  const parts = [`${z.zone_id}${z.kind ? ` (${z.kind})` : ""}: ${STATUS_TEXT[shown]}`];
  if (z.processing_tool) parts.push(z.processing_tool);
  if (z.confidence != null) parts.push(`${Math.round(z.confidence * 100)}% confidence`);
  if (z.duration_ms != null) parts.push(`${z.duration_ms} ms`);
  if (z.error) parts.push(z.error);
  return parts.join(" · ");
}
