import { memo, useCallback, useMemo, useRef, useState, type KeyboardEvent } from "react";
import { isFinished, type JobState, type ZoneView } from "../../client/index";
import type { JobStatus, PageInfo } from "../../generated/events";
import type { PageProgress, PageState } from "../jobSummary";
import { usePageImage, type PageImages } from "../pageImages";
import { opensZone, ZoneDetails, type ZoneContentLoader } from "./ZoneDetails";

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
 * Each page to scale, drawn over a small image of the page once the worker has rendered it, with
 * its zone boxes coloured by status, and every page up to the document's known page count: those
 * not declared yet are "waiting", or "not reached" once the job has ended; zones a stopped job
 * never finished are "not processed". Re-renders only when the job's zones or pages change, and
 * then only the pages whose zones changed (the reducer keeps every unchanged zone object as it
 * was).
 *
 * Zones are buttons: a click, or Enter on a focused zone, opens its details (kind, tool,
 * confidence, and its text or table) beside the map; Escape closes them. Each page is one tab
 * stop; the arrow keys move between its zones.
 */
export const ZoneMap = memo(function ZoneMap({
  zones: byId,
  pages: declared,
  progress,
  status,
  images,
  loadZone,
}: {
  zones: JobState["zones"];
  pages: JobState["pages"];
  /** Every page's state (`summarizeJob`), in page order. */
  progress: readonly PageProgress[];
  /** The job's status: zones a stopped job left unfinished are shown as not processed. */
  status: JobStatus;
  /** The job's page images; without it pages are drawn as outlines. */
  images?: PageImages | null;
  /** Loads a zone's extracted content for its details; without it they show what events say. */
  loadZone?: ZoneContentLoader;
}) {
  const ended = isFinished({ status });
  const stopped = ended && status !== "completed";
  const [selected, setSelected] = useState<string | null>(null);
  const container = useRef<HTMLDivElement>(null);
  const open = useCallback((zoneId: string) => setSelected(zoneId), []);
  const close = useCallback(() => {
    const zoneId = selected;
    setSelected(null);
    // Focus goes back to the zone that opened the details.
    const rect = [...(container.current?.querySelectorAll<SVGElement>("rect.zone") ?? [])].find(
      (r) => r.dataset.zone === zoneId,
    );
    rect?.focus();
  }, [selected]);
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
  const selectedZone = selected ? byId[selected] : undefined;
  return (
    <div className={selectedZone ? "zone-map zone-map--details" : "zone-map"} ref={container}>
      <div className="zone-map-pages">
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
            const size = sizes.get(page.number);
            return (
              <PageMap
                key={page.number}
                number={page.number}
                width={(size ?? DEFAULT_PAGE).width}
                height={(size ?? DEFAULT_PAGE).height}
                state={page.state}
                stopped={stopped}
                zones={onPage.get(page.number) ?? NO_ZONES}
                images={size ? images : null}
                selected={selectedZone?.page === page.number ? selectedZone.zone_id : null}
                onOpen={open}
              />
            );
          })}
        </div>
        <ZoneTable zones={zones} unplaced={unplaced.length} stopped={stopped} />
      </div>
      {selectedZone && (
        <ZoneDetails key={selectedZone.zone_id} zone={selectedZone} load={loadZone} jobEnded={ended} onClose={close} />
      )}
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
  /** Where the page's image comes from (only for declared pages: they have been drawn). */
  images: PageImages | null | undefined;
  /** The zone of this page whose details are open, if any. */
  selected: string | null;
  onOpen: (zoneId: string) => void;
}

/** Moves between a page's zones: the arrow keys go to the next or previous one, Home and End to
 * the first and last. */
const STEPS: Record<string, (index: number, count: number) => number> = {
  ArrowRight: (i, n) => Math.min(i + 1, n - 1),
  ArrowDown: (i, n) => Math.min(i + 1, n - 1),
  ArrowLeft: (i) => Math.max(i - 1, 0),
  ArrowUp: (i) => Math.max(i - 1, 0),
  Home: () => 0,
  End: (_, n) => n - 1,
};

/** One page, its image and its zone boxes; re-renders only when one of its zones changed. */
const PageMap = memo(
  function PageMap({ number, width, height, state, stopped, zones, images, selected, onOpen }: PageMapProps) {
    const figure = useRef<HTMLElement>(null);
    const image = usePageImage(images, number, Boolean(images), figure);
    const [imageShown, setImageShown] = useState<string | null>(null);
    // The zone that takes this page's one tab stop: the last one focused, else the first.
    const [current, setCurrent] = useState<string | null>(null);
    const done = zones.filter((z) => z.status === "completed" || z.status === "failed").length;
    const label = `Page ${number}: ${done} of ${zones.length} zones done${state === "stopped" ? ", stopped" : ""}`;
    const boxed = zones.filter((z) => z.bbox);
    const tabStop = boxed.some((z) => z.zone_id === current) ? current : (boxed[0]?.zone_id ?? null);

    const onKeyDown = (event: KeyboardEvent<SVGRectElement>, index: number) => {
      const zone = boxed[index];
      if (!zone) return;
      if (opensZone(event)) {
        event.preventDefault();
        onOpen(zone.zone_id);
        return;
      }
      const step = STEPS[event.key];
      if (!step) return;
      event.preventDefault();
      const rects = figure.current?.querySelectorAll<SVGRectElement>("rect.zone");
      rects?.[step(index, boxed.length)]?.focus();
    };

    return (
      <figure
        ref={figure}
        className={image ? "page page--imaged" : "page"}
        data-testid={`page-${number}`}
        data-state={state}
        data-image={image ? (imageShown === image ? "shown" : "loading") : "none"}
      >
        <svg viewBox={`0 0 ${width} ${height}`} role="group" aria-label={label}>
          <rect className="page-outline" x={0} y={0} width={width} height={height} />
          {image && (
            <image
              className="page-image"
              href={image}
              x={0}
              y={0}
              width={width}
              height={height}
              preserveAspectRatio="none"
              aria-hidden="true"
              onLoad={() => setImageShown(image)}
            />
          )}
          {boxed.map((z, index) => {
            const [x0, top, x1, bottom] = z.bbox as [number, number, number, number];
            const shown = shownStatus(z, stopped);
            const title = zoneTitle(z, shown);
            return (
              <rect
                key={z.zone_id}
                className={`zone zone--${shown}${z.zone_id === selected ? " zone--selected" : ""}`}
                data-zone={z.zone_id}
                data-status={shown}
                x={x0}
                y={top}
                width={Math.max(1, x1 - x0)}
                height={Math.max(1, bottom - top)}
                role="button"
                tabIndex={z.zone_id === tabStop ? 0 : -1}
                aria-label={title}
                aria-haspopup="dialog"
                aria-expanded={z.zone_id === selected}
                onClick={() => onOpen(z.zone_id)}
                onKeyDown={(event) => onKeyDown(event, index)}
                onFocus={() => setCurrent(z.zone_id)}
              >
                <title>{title}</title>
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
    prev.images === next.images &&
    prev.selected === next.selected &&
    prev.onOpen === next.onOpen &&
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
