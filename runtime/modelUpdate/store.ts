import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import path from "node:path";
import { ID_PATTERN } from "../config/sections/common.js";
import type { VariantName } from "../inference/manifest.js";

/** One installed model file. */
export interface ModelVersion {
  sha256: string;
  /** Absolute path of the file. */
  file: string;
  /** Where it came from, without credentials. */
  url: string;
  bytes: number;
  installed_at: string;
  /** Which manifest variant the file stands for; default fp32. */
  variant?: VariantName;
}

/** What is persisted per model: survives restarts, so an update stays applied. */
export interface ModelState {
  current: ModelVersion | null;
  previous: ModelVersion | null;
  /** The last rollback, when one happened: which version failed and why. */
  last_rollback?: { sha256: string; reason: string; at: string };
  /** The newest signed statement carried out for this model: a replayed older one, or a lower version, is refused. */
  accepted?: AcceptedStatement;
}

/** What is kept of an accepted signed update_model statement. */
export interface AcceptedStatement {
  version: string;
  issued_at: string;
  sha256: string;
}

const EMPTY: ModelState = { current: null, previous: null };

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  const fd = openSync(tmp, "w", 0o640);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  // The rename is durable only once the directory entry is.
  const dir = openSync(path.dirname(file), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * Updated models under `<data_dir>/models/<model_id>/`: `versions/<sha256>.onnx` files and a
 * `state.json` naming the current and previous version, replaced atomically (write, fsync,
 * rename), so a crash at any point leaves either the old or the new state, never a mix.
 */
export class ModelStore {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = path.join(dataDir, "models");
  }

  #dir(modelId: string): string {
    if (!ID_PATTERN.test(modelId)) throw new Error(`model id "${modelId}" is not a valid id`);
    return path.join(this.root, modelId);
  }

  state(modelId: string): ModelState {
    const file = path.join(this.#dir(modelId), "state.json");
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { ...EMPTY };
      throw new Error(`model store ${file}: ${(err as Error).message}`);
    }
    try {
      const s = JSON.parse(text) as ModelState;
      return {
        current: s.current ?? null,
        previous: s.previous ?? null,
        ...(s.last_rollback ? { last_rollback: s.last_rollback } : {}),
        ...(s.accepted ? { accepted: s.accepted } : {}),
      };
    } catch (err) {
      throw new Error(`model store ${file}: not valid JSON (${(err as Error).message}); remove it to go back to the shipped model`);
    }
  }

  /** The updated file to load for a model, or undefined to load the shipped one. */
  active(modelId: string): ModelVersion | undefined {
    return this.state(modelId).current ?? undefined;
  }

  #save(modelId: string, state: ModelState): void {
    const dir = this.#dir(modelId);
    mkdirSync(dir, { recursive: true });
    writeAtomic(path.join(dir, "state.json"), `${JSON.stringify(state, null, 2)}\n`);
  }

  /** A fresh path to download into, on the same file system as the versions (so the move is a rename). */
  stagingPath(modelId: string): string {
    const dir = path.join(this.#dir(modelId), "staging");
    mkdirSync(dir, { recursive: true });
    return path.join(dir, `${Date.now()}-${randomBytes(4).toString("hex")}.part`);
  }

  /**
   * Removes every download left in a staging folder (a stop or a crash mid-download): a stale
   * `.part` must not keep the disk full for the next start. Returns the files removed.
   */
  cleanStaging(): string[] {
    let models: string[];
    try {
      models = readdirSync(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const removed: string[] = [];
    for (const m of models) {
      const dir = path.join(this.root, m, "staging");
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") continue;
        throw err;
      }
      for (const n of names) {
        rmSync(path.join(dir, n), { force: true, recursive: true });
        removed.push(path.join(dir, n));
      }
    }
    return removed;
  }

  /** Moves a verified download into `versions/`; returns its final path. */
  install(modelId: string, staged: string, sha256: string): string {
    const dir = path.join(this.#dir(modelId), "versions");
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${sha256}.onnx`);
    renameSync(staged, file);
    return file;
  }

  /** Makes `version` current and the old current the previous one; `accepted` records the signed statement it came with. */
  commit(modelId: string, version: ModelVersion, accepted?: AcceptedStatement): ModelState {
    const old = this.state(modelId);
    const next: ModelState = {
      current: version,
      previous: old.current?.sha256 === version.sha256 ? old.previous : old.current,
      ...((accepted ?? old.accepted) ? { accepted: accepted ?? old.accepted } : {}),
    };
    this.#save(modelId, next);
    return next;
  }

  /**
   * The current version failed (to load after a restart, or to run): the previous one becomes
   * current again (or the shipped model, when there is none). Returns the new state.
   */
  rollback(modelId: string, reason: string): ModelState {
    const old = this.state(modelId);
    const next: ModelState = { current: old.previous, previous: null, ...(old.accepted ? { accepted: old.accepted } : {}) };
    if (old.current) next.last_rollback = { sha256: old.current.sha256, reason, at: new Date().toISOString() };
    this.#save(modelId, next);
    return next;
  }

  /** Deletes version files beyond the newest `keep`, never the current or previous one, and stale downloads. */
  prune(modelId: string, keep: number): string[] {
    const s = this.state(modelId);
    const protectedFiles = new Set([s.current?.file, s.previous?.file].filter((f): f is string => f !== undefined));
    const dir = path.join(this.#dir(modelId), "versions");
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const files = names.map((n) => path.join(dir, n));
    const others = files.filter((f) => !protectedFiles.has(f));
    // File names are hashes, not dates: keep the ones written last.
    const byAge = others.map((f) => ({ f, t: statMtime(f) })).sort((a, b) => b.t - a.t);
    const removed = byAge.slice(Math.max(0, keep - protectedFiles.size)).map((x) => x.f);
    for (const f of removed) rmSync(f, { force: true });
    rmSync(path.join(this.#dir(modelId), "staging"), { recursive: true, force: true });
    return removed;
  }
}

function statMtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
}
