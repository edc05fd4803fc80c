import { existsSync, renameSync, rmSync } from "node:fs";
import type { Logger } from "../log/logger.js";
import { OutboxFileError, OutboxStore, type SyncMode } from "./outboxStore.js";

/**
 * Moves a damaged SQLite file (and its WAL) aside as `FILE.damaged-<timestamp>`, so it can be
 * looked at later and a new file can start in its place. The shared-memory index is rebuilt by
 * SQLite from the WAL, so it is removed. Returns the new name of the main file.
 */
export function moveAside(file: string, now = new Date()): string {
  const suffix = `.damaged-${now.toISOString().replace(/[:.]/g, "-")}`;
  if (existsSync(`${file}-wal`)) renameSync(`${file}-wal`, `${file}${suffix}-wal`);
  rmSync(`${file}-shm`, { force: true });
  if (existsSync(file)) renameSync(file, `${file}${suffix}`);
  return `${file}${suffix}`;
}

export interface OpenedOutbox {
  store: OutboxStore;
  /** Set when the file was damaged and replaced: what happened, for health and the log. */
  notice?: string;
}

/**
 * Opens the outbox file; a damaged one (garbage, truncated, malformed pages: SQLite's open or its
 * quick_check says so) is moved aside and a new one is started. Throws an OutboxFileError when no
 * usable file can be had (e.g. the disk is full, so not even a new one can be created).
 */
export function openOutboxFile(file: string, sync: SyncMode, log: Logger): OpenedOutbox {
  try {
    return { store: new OutboxStore(file, sync) };
  } catch (err) {
    if (!(err instanceof OutboxFileError) || !err.damaged) throw err;
    const reason = (err.cause as Error | undefined)?.message ?? err.message;
    const movedTo = moveAside(file);
    log.error({ file, moved_to: movedTo, reason }, "outbox file damaged; moved aside, starting a new one");
    const store = new OutboxStore(file, sync);
    return {
      store,
      notice: `the outbox file was damaged (${reason}); moved to ${movedTo} and a new one started: the messages it held are lost, and the gap in seq shows where`,
    };
  }
}
