/**
 * What the upload answers said about each job this browser uploaded (its page count above all),
 * kept in localStorage so a reload or another tab still knows it. The job's snapshot lists pages
 * only as they are declared, so this is the page's one source for a running job's page total.
 */
import { useSyncExternalStore } from "react";

/** The upload answer's facts the page keeps. */
export interface UploadInfo {
  /** Pages of the document. */
  pages: number;
  /** The sanitised file name. */
  name: string;
}

const KEY = "progress-bridge.uploads";
/** Jobs remembered at most (the oldest are forgotten). */
export const MAX_REMEMBERED = 500;

const listeners = new Set<() => void>();
let cache: Readonly<Record<string, UploadInfo>> | null = null;

function read(): Readonly<Record<string, UploadInfo>> {
  if (cache) return cache;
  try {
    cache = JSON.parse(localStorage.getItem(KEY) ?? "{}") as Record<string, UploadInfo>;
  } catch {
    cache = {};
  }
  return cache;
}

/** Remember what the upload of `jobId` answered. */
export function rememberUpload(jobId: string, info: UploadInfo): void {
  const entries = Object.entries({ ...read(), [jobId]: info }).slice(-MAX_REMEMBERED);
  cache = Object.fromEntries(entries);
  try {
    localStorage.setItem(KEY, JSON.stringify(cache));
  } catch {
    // Storage full or disabled: the page still knows it until reloaded.
  }
  for (const listener of listeners) listener();
}

/** Forget everything (tests, sign-out of a shared machine). */
export function forgetUploads(): void {
  cache = {};
  localStorage.removeItem(KEY);
  for (const listener of listeners) listener();
}

function subscribe(onChange: () => void): () => void {
  listeners.add(onChange);
  return () => {
    listeners.delete(onChange);
  };
}

/** The upload facts of `jobId`, or `null` when this browser did not upload it. */
export function useUpload(jobId: string): UploadInfo | null {
  const all = useSyncExternalStore(subscribe, read, read);
  return all[jobId] ?? null;
}
