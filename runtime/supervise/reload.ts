export interface ReloadOptions {
  /** Only say what a reload would do (which parts it would restart, start and stop); change nothing. */
  dryRun?: boolean;
}

/** Which parts a reload touches, by part name. */
export interface ReloadChanges {
  /** Parts that run on both configs but whose slice (or a dependency) changed: stopped, then started anew. */
  restarted: string[];
  /** Parts only the new config has. */
  started: string[];
  /** Parts only the old config had. */
  stopped: string[];
  /** Parts left running untouched. */
  kept: string[];
  /** Settings applied without restarting anything (`log_level`, `supervision`). */
  in_place: string[];
}

export interface ReloadFailure {
  part: string;
  error: string;
}

/**
 * What `Daemon.reload()` did:
 * - `rejected`: the file is invalid, or the new config cannot be prepared (its data_dir cannot be
 *   made); nothing changed. `problems` has one line each (`FILE:LINE:COL key: message`).
 * - `planned`: a dry run; nothing changed, the lists say what a reload would do.
 * - `applied`: the new config runs; the lists say what was done (all empty: nothing changed).
 * - `rolled_back`: some of the new config's parts failed to start (`failed`), so the previous
 *   config runs again; the lists say what the attempt had done.
 */
export type ReloadResult =
  | { outcome: "rejected"; config: string; problems: string[] }
  | ({ outcome: "planned"; config: string } & ReloadChanges)
  | ({ outcome: "applied"; config: string } & ReloadChanges)
  | ({ outcome: "rolled_back"; config: string; failed: ReloadFailure[] } & ReloadChanges);

/** The last reload (never a dry run), as health reports it. */
export type LastReload = { at: string } & Exclude<ReloadResult, { outcome: "planned" }>;
