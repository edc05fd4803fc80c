import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import path from "node:path";

/** A small, real file system of its own for a test's data directory, so "disk full" is real. */
export interface Tmpfs {
  dir: string;
  /** Fills the file system to the last byte with `filler` (ENOSPC reached); returns the bytes written. */
  fill(): number;
  /** Deletes the filler: space is back. */
  free(): void;
  /** Bytes free right now, as statfs(2) says. */
  freeBytes(): number;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `size` (e.g. "2m") on `dir`. Needs root (CI runs as root). Where mounting is
 * not permitted it returns the reason instead, so a suite can skip and say why; under CI that
 * is an error, never a silent skip.
 */
export function mountTmpfs(dir: string, size: string): Tmpfs | string {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir], { stdio: "pipe" });
  } catch (err) {
    const why = `cannot mount a tmpfs on ${dir}: ${((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim()}`;
    if (process.env.CI) throw new Error(`${why} (CI must be able to: it runs as root)`);
    console.warn(`[cityedge tests] ${why}; skipping the full-disk tests`);
    return why;
  }
  const filler = path.join(dir, "filler");
  let n = 0;
  return {
    dir,
    fill() {
      const fd = openSync(path.join(dir, `filler.${n++}`), "w");
      const chunk = Buffer.alloc(64 * 1024, 7);
      let written = 0;
      try {
        // Down to single bytes, so that not even one page is left.
        for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
          for (;;) {
            try {
              written += writeSync(fd, chunk, 0, size);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
              throw err;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      return written;
    },
    free() {
      for (let i = 0; i < n; i++) rmSync(`${filler}.${i}`, { force: true });
    },
    freeBytes() {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    unmount() {
      execFileSync("umount", ["-l", dir], { stdio: "pipe" });
    },
  };
}
