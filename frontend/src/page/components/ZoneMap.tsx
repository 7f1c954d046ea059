import type { JobState, ZoneView } from "../../client/index";
import { zonesInOrder } from "../../client/index";
import type { PageInfo } from "../../generated/events";

/** US Letter in points: used for pages whose size the job has not reported. */
const DEFAULT_PAGE = { width: 612, height: 792 };

const STATUS_TEXT: Record<ZoneView["status"], string> = {
  pending: "pending",
  processing: "processing",
  completed: "done",
  failed: "failed",
};

/** Each page's outline to scale, with its zone boxes coloured by status. */
export function ZoneMap({ job }: { job: JobState }) {
  const zones = zonesInOrder(job);
  const pages = new Map<number, PageInfo>(job.pages.map((p) => [p.number, p]));
  for (const z of zones) {
    if (z.page != null && !pages.has(z.page)) pages.set(z.page, { number: z.page, ...DEFAULT_PAGE });
  }
  const ordered = [...pages.values()].sort((a, b) => a.number - b.number);
  if (ordered.length === 0) {
    return <p className="hint">No zones yet.</p>;
  }
  const unplaced = zones.filter((z) => z.page == null);
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
        {ordered.map((page) => {
          const onPage = zones.filter((z) => z.page === page.number);
          const done = onPage.filter((z) => z.status === "completed" || z.status === "failed").length;
          const label = `Page ${page.number}: ${done} of ${onPage.length} zones done`;
          return (
            <figure key={page.number} className="page" data-testid={`page-${page.number}`}>
              <svg viewBox={`0 0 ${page.width} ${page.height}`} role="img" aria-label={label}>
                <rect className="page-outline" x={0} y={0} width={page.width} height={page.height} />
                {onPage
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
                Page {page.number} · {done}/{onPage.length}
              </figcaption>
            </figure>
          );
        })}
      </div>
      <details className="zone-table">
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
          <tbody>
            {zones.map((z) => (
              <tr key={z.zone_id} data-status={z.status}>
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
            ))}
          </tbody>
        </table>
        {unplaced.length > 0 && <p className="hint">{unplaced.length} zone(s) without a page.</p>}
      </details>
    </div>
  );
}

function zoneTitle(z: ZoneView): string {
  const parts = [`${z.zone_id}${z.kind ? ` (${z.kind})` : ""}: ${STATUS_TEXT[z.status]}`];
  if (z.processing_tool) parts.push(z.processing_tool);
  if (z.confidence != null) parts.push(`${Math.round(z.confidence * 100)}% confidence`);
  if (z.duration_ms != null) parts.push(`${z.duration_ms} ms`);
  if (z.error) parts.push(z.error);
  return parts.join(" · ");
}
