import { memo, useMemo, useState } from "react";
import type { JobState, ZoneView } from "../../client/index";
import type { PageInfo } from "../../generated/events";

/** US Letter in points: used for pages whose size the job has not reported. */
const DEFAULT_PAGE = { width: 612, height: 792 };

const STATUS_TEXT: Record<ZoneView["status"], string> = {
  pending: "pending",
  processing: "processing",
  completed: "done",
  failed: "failed",
};

/**
 * Each page's outline to scale, with its zone boxes coloured by status. Re-renders only when
 * the job's zones or pages change, and then only the pages whose zones changed (the reducer
 * keeps every unchanged zone object as it was).
 */
export const ZoneMap = memo(function ZoneMap({
  zones: byId,
  pages: declared,
}: {
  zones: JobState["zones"];
  pages: JobState["pages"];
}) {
  const zones = useMemo(() => Object.values(byId).sort((a, b) => a.index - b.index), [byId]);
  const { ordered, onPage, unplaced } = useMemo(() => {
    const pages = new Map<number, PageInfo>(declared.map((p) => [p.number, p]));
    const onPage = new Map<number, ZoneView[]>();
    const unplaced: ZoneView[] = [];
    for (const z of zones) {
      if (z.page == null) {
        unplaced.push(z);
        continue;
      }
      if (!pages.has(z.page)) pages.set(z.page, { number: z.page, ...DEFAULT_PAGE });
      const list = onPage.get(z.page);
      if (list) list.push(z);
      else onPage.set(z.page, [z]);
    }
    const ordered = [...pages.values()].sort((a, b) => a.number - b.number);
    return { ordered, onPage, unplaced };
  }, [zones, declared]);

  if (ordered.length === 0) {
    return <p className="hint">No zones yet.</p>;
  }
  return (
    <div>
      <ul className="legend" aria-label="Legend">
        {(["pending", "processing", "completed", "failed"] as const).map((s) => (
          <li key={s}>
            <span className={`swatch zone--${s}`} aria-hidden="true" /> {STATUS_TEXT[s]}
          </li>
        ))}
      </ul>
      <div className="pages">
        {ordered.map((page) => (
          <PageMap
            key={page.number}
            number={page.number}
            width={page.width}
            height={page.height}
            zones={onPage.get(page.number) ?? NO_ZONES}
          />
        ))}
      </div>
      <ZoneTable zones={zones} unplaced={unplaced.length} />
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

interface PageMapProps {
  number: number;
  width: number;
  height: number;
  zones: readonly ZoneView[];
}

/** One page and its zone boxes; re-renders only when one of its zones changed. */
const PageMap = memo(
  function PageMap({ number, width, height, zones }: PageMapProps) {
    const done = zones.filter((z) => z.status === "completed" || z.status === "failed").length;
    const label = `Page ${number}: ${done} of ${zones.length} zones done`;
    return (
      <figure className="page" data-testid={`page-${number}`}>
        <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
          <rect className="page-outline" x={0} y={0} width={width} height={height} />
          {zones
            .filter((z) => z.bbox)
            .map((z) => {
              const [x0, top, x1, bottom] = z.bbox as [number, number, number, number];
              return (
                <rect
                  key={z.zone_id}
                  className={`zone zone--${z.status}`}
                  data-zone={z.zone_id}
                  data-status={z.status}
                  x={x0}
                  y={top}
                  width={Math.max(1, x1 - x0)}
                  height={Math.max(1, bottom - top)}
                >
                  <title>{zoneTitle(z)}</title>
                </rect>
              );
            })}
        </svg>
        <figcaption>
          Page {number} · {done}/{zones.length}
        </figcaption>
      </figure>
    );
  },
  (prev, next) =>
    prev.number === next.number &&
    prev.width === next.width &&
    prev.height === next.height &&
    sameZones(prev.zones, next.zones),
);

/** Every zone as a table row; the rows are rendered only while the section is open. */
function ZoneTable({ zones, unplaced }: { zones: readonly ZoneView[]; unplaced: number }) {
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
        <tbody>{open && zones.map((z) => <ZoneRow key={z.zone_id} zone={z} />)}</tbody>
      </table>
      {unplaced > 0 && <p className="hint">{unplaced} zone(s) without a page.</p>}
    </details>
  );
}

const ZoneRow = memo(function ZoneRow({ zone: z }: { zone: ZoneView }) {
  return (
    <tr data-status={z.status}>
      <td>{z.index}</td>
      <td>
        {z.zone_id}
        {z.kind ? ` (${z.kind})` : ""}
      </td>
      <td>{z.page ?? "—"}</td>
      <td>{STATUS_TEXT[z.status]}</td>
      <td>{z.processing_tool ?? "—"}</td>
      <td>{z.confidence != null ? `${Math.round(z.confidence * 100)}%` : "—"}</td>
      <td>{z.duration_ms != null ? `${z.duration_ms} ms` : "—"}</td>
    </tr>
  );
});

function zoneTitle(z: ZoneView): string {
  const parts = [`${z.zone_id}${z.kind ? ` (${z.kind})` : ""}: ${STATUS_TEXT[z.status]}`];
  if (z.processing_tool) parts.push(z.processing_tool);
  if (z.confidence != null) parts.push(`${Math.round(z.confidence * 100)}% confidence`);
  if (z.duration_ms != null) parts.push(`${z.duration_ms} ms`);
  if (z.error) parts.push(z.error);
  return parts.join(" · ");
}
