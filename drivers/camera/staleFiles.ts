import { lstatSync, readdirSync, unlinkSync, type Stats } from "node:fs";
import path from "node:path";

/** Whether a process runs (EPERM: it does, as another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the files in `dir` that a killed daemon left behind: those whose name matches `name`
 * (its first group the process id that made them) and whose process is gone, never this
 * process's own. `kind` narrows what is removed (a FIFO, say); a file gone meanwhile or not ours
 * to remove is left. Returns the paths removed.
 */
export function sweepDeadProcessFiles(dir: string, name: RegExp, kind: (st: Stats) => boolean = () => true): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const entry of names) {
    const pid = name.exec(entry)?.[1];
    if (pid === undefined || Number(pid) === process.pid || processAlive(Number(pid))) continue;
    const file = path.join(dir, entry);
    try {
      if (!kind(lstatSync(file))) continue;
      unlinkSync(file);
      removed.push(file);
    } catch {
      // gone meanwhile, or not ours to remove
    }
  }
  return removed;
}
