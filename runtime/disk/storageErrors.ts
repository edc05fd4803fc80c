import { statfsSync } from "node:fs";

/** SQLite's and the kernel's ways of saying "no space left". */
const FULL_CODES = new Set(["SQLITE_FULL", "ENOSPC", "EDQUOT"]);
/** SQLite's ways of saying "this file is not (any more) a sound database". */
const DAMAGED = /^SQLITE_(CORRUPT|NOTADB)/;

function codeOf(err: unknown): string {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === "string" ? c : "";
}

/** The write failed because the file system (or the user's quota) is full. */
export function isDiskFull(err: unknown): boolean {
  const code = codeOf(err);
  return FULL_CODES.has(code) || /database or disk is full|no space left on device/i.test((err as Error | null)?.message ?? "");
}

/** SQLite found the file damaged (garbage, truncated, a malformed page). */
export function isDamaged(err: unknown): boolean {
  return DAMAGED.test(codeOf(err));
}

/** Bytes an unprivileged writer can still use on the file system holding `dir`; undefined when it cannot be asked. */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    // A missing or unreadable directory has no answer; callers report the write error itself.
    return undefined;
  }
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/**
 * One line for health and logs: "disk full (0 B free on /var/lib/cityedge)" for a full disk, else
 * the error's own message.
 */
export function describeWriteError(err: unknown, dir: string): string {
  if (isDiskFull(err)) {
    const free = freeBytes(dir);
    return `disk full (${free === undefined ? "free space unknown" : `${formatBytes(free)} free`} on ${dir})`;
  }
  return (err as Error | null)?.message ?? String(err);
}
