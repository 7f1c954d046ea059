/**
 * The small page images drawn under the zone map: fetched on demand (a page asks when it comes
 * into view), a few at a time, and kept as object URLs until the job view goes away.
 *
 * The worker draws a page before it declares the page's zones (docs/pdf.md, "Page images"), so a
 * page is asked for once it is declared, and a 404 then means it has no image (it could not be
 * drawn): it is not asked for again. A network error may be retried by asking again.
 */
import { useEffect, useSyncExternalStore, type RefObject } from "react";

/** Fetches one page's image; resolves `null` when the page has none. */
export type PageImageFetcher = (page: number, signal: AbortSignal) => Promise<Blob | null>;

/** Default limits of a `PageImages`. */
export const PAGE_IMAGE_DEFAULTS = {
  /** Requests in flight at once. */
  maxConcurrent: 4,
  /** How far outside the viewport a page starts loading, as a CSS margin. */
  rootMargin: "300px",
};

type PageImageStatus = "queued" | "loading" | "ready" | "none";

/** Page images of one job. */
export class PageImages {
  private readonly urls = new Map<number, string>();
  private readonly status = new Map<number, PageImageStatus>();
  private readonly queue: number[] = [];
  private readonly listeners = new Set<() => void>();
  private controller = new AbortController();
  private active = 0;

  constructor(
    private readonly fetchImage: PageImageFetcher,
    private readonly maxConcurrent = PAGE_IMAGE_DEFAULTS.maxConcurrent,
  ) {}

  /** The page's image as an object URL, or `null` while it is not loaded (or has none). */
  url(page: number): string | null {
    return this.urls.get(page) ?? null;
  }

  /** True once the page is known to have no image. */
  hasNone(page: number): boolean {
    return this.status.get(page) === "none";
  }

  /** Load the page's image unless it is loaded, on its way, or known to have none. */
  request(page: number): void {
    if (this.status.has(page)) return;
    this.status.set(page, "queued");
    this.queue.push(page);
    this.pump();
  }

  /** Called whenever an image arrives; returns the unsubscribe function. */
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Abort what is in flight and release every image; the loader can be used again after. */
  clear(): void {
    this.controller.abort();
    this.controller = new AbortController();
    for (const url of this.urls.values()) URL.revokeObjectURL(url);
    this.urls.clear();
    this.status.clear();
    this.queue.length = 0;
    this.active = 0;
    this.emit();
  }

  private pump(): void {
    while (this.active < this.maxConcurrent && this.queue.length > 0) {
      const page = this.queue.shift() as number;
      this.active += 1;
      this.status.set(page, "loading");
      void this.load(page, this.controller.signal);
    }
  }

  private async load(page: number, signal: AbortSignal): Promise<void> {
    let blob: Blob | null = null;
    let failed = false;
    try {
      blob = await this.fetchImage(page, signal);
    } catch {
      failed = true; // a network error: asking again may work
    }
    if (signal.aborted) return; // cleared meanwhile: this load belongs to nothing now
    this.active -= 1;
    if (failed) this.status.delete(page);
    else if (!blob) this.status.set(page, "none");
    else {
      this.urls.set(page, URL.createObjectURL(blob));
      this.status.set(page, "ready");
      this.emit();
    }
    this.pump();
  }

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}

/**
 * The page's image URL (or `null`), asked for once `wanted` and the element `ref` points at is
 * near the viewport (at once where IntersectionObserver is missing). Re-renders only when the
 * URL changes.
 */
export function usePageImage(
  images: PageImages | null | undefined,
  page: number,
  wanted: boolean,
  ref: RefObject<Element | null>,
): string | null {
  useEffect(() => {
    const element = ref.current;
    if (!images || !wanted || !element) return;
    if (typeof IntersectionObserver === "undefined") {
      images.request(page);
      return;
    }
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) {
          images.request(page);
          observer.disconnect();
        }
      },
      { rootMargin: PAGE_IMAGE_DEFAULTS.rootMargin },
    );
    observer.observe(element);
    return () => observer.disconnect();
  }, [images, page, wanted, ref]);
  return useSyncExternalStore(
    images?.subscribe ?? noSubscribe,
    () => images?.url(page) ?? null,
    () => null,
  );
}

const noSubscribe = () => () => undefined;
