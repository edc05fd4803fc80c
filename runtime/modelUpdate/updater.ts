import { rmSync } from "node:fs";
import type { VariantName } from "../inference/manifest.js";
import type { Logger } from "../log/logger.js";
import { redactUrl } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { VerifiedStatement } from "../commands/statementCheck.js";
import { CommandError } from "../commands/types.js";
import { download } from "./download.js";
import type { AcceptedStatement, ModelStore, ModelVersion } from "./store.js";
import type { ModelSwapTarget } from "./swap.js";
import type { UrlPolicy } from "./urlPolicy.js";
import { urlProblem } from "./urlPolicy.js";
import { compareVersions } from "./version.js";

/** Clean runs on real frames after which a swapped-in model is trusted. */
const PROBATION_RUNS = 3;

export interface UpdateRequest {
  model: string;
  url: string;
  sha256: string;
  variant?: VariantName;
  /** The model's version; a signed statement must name it, and it must be newer than the newest accepted. */
  version?: string;
  allow_downgrade?: boolean;
}

export interface ModelUpdaterOptions {
  store: ModelStore;
  target: ModelSwapTarget;
  /** Where downloads may come from; default: any http(s) URL (tools and tests; the daemon passes its config's). */
  policy?: UrlPolicy;
  /** Free space a download must leave on the disk. */
  minFreeBytes?: number;
  maxBytes: number;
  timeoutMs: number;
  keepVersions: number;
  /**
   * After a swap, how long to watch the new session's first runs on real frames; errors there roll
   * back to the previous version. 0 turns the probation off.
   */
  probationMs: number;
  metrics: Metrics;
  log: Logger;
}

/**
 * Carries out update_model: download (with progress in the log), sha256 and signature checks,
 * then a swap that warms the new session up before it replaces the running one. The running
 * model changes only when every step passed; the store keeps the previous version, and the new
 * one is current across restarts.
 */
export class ModelUpdater {
  readonly #o: ModelUpdaterOptions;
  #abort = new AbortController();

  constructor(opts: ModelUpdaterOptions) {
    this.#o = opts;
  }

  /** Aborts a download in progress (the daemon is stopping); later updates start afresh. */
  abort(): void {
    this.#abort.abort();
    this.#abort = new AbortController();
  }

  /**
   * `statement`: the request's signed statement, already verified by the dispatcher (signature,
   * scope, validity, nonce); here it is checked against the newest one accepted for the model.
   */
  async update(req: UpdateRequest, log: Logger, statement?: VerifiedStatement): Promise<Record<string, unknown>> {
    const { store, target } = this.#o;
    const counter = this.#o.metrics.counter("cityedge_model_updates_total");
    const ids = target.modelIds();
    if (!ids.includes(req.model)) throw new CommandError("not_found", `unknown model "${req.model}" (models: ${ids.join(", ") || "none"})`);
    const refuse = (why: string): never => {
      counter.inc({ model: req.model, outcome: "rejected" });
      throw new CommandError("rejected", `${why}; the running model is unchanged`);
    };
    const expected = req.sha256.toLowerCase();
    let accepted: AcceptedStatement | undefined;
    if (statement) {
      if (req.version === undefined) refuse("a signed update_model statement must name the model's version");
      const last = store.state(req.model).accepted;
      if (last && !req.allow_downgrade) {
        if (Date.parse(statement.issued_at) < Date.parse(last.issued_at))
          refuse(
            `the statement was issued at ${statement.issued_at}, before the newest one accepted for ${req.model} (${last.issued_at}): an older statement is refused`,
          );
        const cmp = compareVersions(req.version!, last.version);
        if (cmp < 0)
          refuse(
            `version ${req.version} is older than ${last.version}, the newest accepted for ${req.model}: a downgrade is refused (sign allow_downgrade: true for a deliberate rollback)`,
          );
        if (cmp === 0) refuse(`version ${req.version} of ${req.model} was accepted already`);
      }
      accepted = { version: req.version!, issued_at: statement.issued_at, sha256: expected };
    }
    // The URL is judged before a file is made for it: a refused host leaves nothing behind.
    let parsed: URL | undefined;
    try {
      parsed = new URL(req.url);
    } catch {
      refuse(`"${redactUrl(req.url)}" is not a URL`);
    }
    const problem = this.#o.policy ? urlProblem(parsed!, this.#o.policy) : undefined;
    if (problem) refuse(`download of ${redactUrl(req.url)} refused: ${problem}`);
    const staged = store.stagingPath(req.model);
    let got;
    try {
      got = await download(req.url, staged, {
        maxBytes: this.#o.maxBytes,
        timeoutMs: this.#o.timeoutMs,
        log,
        signal: this.#abort.signal,
        ...(this.#o.policy ? { policy: this.#o.policy } : {}),
        ...(this.#o.minFreeBytes !== undefined ? { minFreeBytes: this.#o.minFreeBytes } : {}),
      });
    } catch (err) {
      counter.inc({ model: req.model, outcome: "download_failed" });
      throw new CommandError("failed", `${(err as Error).message}; the running model is unchanged`);
    }
    const reject = (why: string): never => {
      rmSync(staged, { force: true });
      counter.inc({ model: req.model, outcome: "rejected" });
      throw new CommandError("rejected", `${why}; the running model is unchanged`);
    };
    if (got.sha256 !== expected) reject(`sha256 mismatch: expected ${expected}, downloaded ${got.sha256}`);

    const before = store.state(req.model);
    const file = store.install(req.model, staged, got.sha256);
    const version: ModelVersion = {
      sha256: got.sha256,
      file,
      url: redactUrl(req.url),
      bytes: got.bytes,
      installed_at: new Date().toISOString(),
      ...(req.variant ? { variant: req.variant } : {}),
    };
    let provider: string;
    try {
      ({ provider } = await target.swap(req.model, version));
    } catch (err) {
      const reason = (err as Error).message;
      if (before.current?.file !== file && before.previous?.file !== file) rmSync(file, { force: true });
      counter.inc({ model: req.model, outcome: "rolled_back" });
      log.error({ model: req.model, sha256: got.sha256, reason }, "new model failed to load or run; the previous one keeps running");
      throw new CommandError(
        "rejected",
        `the new model failed to load or run (${reason}); rolled back to ${before.current ? `version ${before.current.sha256}` : "the shipped model"}`,
      );
    }
    const failure = await this.#probation(req.model, log);
    if (failure !== undefined) {
      // Back to what ran before; the store was never changed, so a restart agrees.
      await target.swap(req.model, before.current);
      if (before.current?.file !== file && before.previous?.file !== file) rmSync(file, { force: true });
      counter.inc({ model: req.model, outcome: "rolled_back" });
      log.error({ model: req.model, sha256: got.sha256, reason: failure }, "new model failed on real frames; rolled back");
      throw new CommandError(
        "rejected",
        `the new model failed to run (${failure}); rolled back to ${before.current ? `version ${before.current.sha256}` : "the shipped model"}`,
      );
    }
    const state = store.commit(req.model, version, accepted);
    const pruned = store.prune(req.model, this.#o.keepVersions);
    counter.inc({ model: req.model, outcome: "ok" });
    log.info(
      { model: req.model, sha256: got.sha256, provider, previous: state.previous?.sha256 ?? "shipped", pruned: pruned.length },
      "model updated",
    );
    return { model: req.model, sha256: got.sha256, bytes: got.bytes, provider, previous_sha256: state.previous?.sha256 ?? null };
  }

  /**
   * Watches the swapped-in session until it has done a few runs without an error (passes), fails
   * a run (returns why), or the probation time ends without frames (passes: the check run held).
   */
  async #probation(modelId: string, log: Logger): Promise<string | undefined> {
    const ms = this.#o.probationMs;
    const stats = this.#o.target.runStats?.bind(this.#o.target);
    const start = stats?.(modelId);
    if (ms <= 0 || !stats || !start) return undefined;
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      const now = stats(modelId);
      if (!now) return undefined;
      if (now.errors > start.errors)
        return `${now.errors - start.errors} run${now.errors - start.errors === 1 ? "" : "s"} on real frames failed: ${now.lastError ?? "no reason given"}`;
      if (now.runs >= start.runs + PROBATION_RUNS) return undefined;
    }
    log.warn({ model: modelId, probation_ms: ms }, "no frames during the probation; keeping the new model on its check run alone");
    return undefined;
  }

  /**
   * The running updated model failed at run time (reported by the inference loop): go back to
   * the previous version (or the shipped model), persistently. Returns what is current now.
   */
  async rollback(modelId: string, reason: string, log: Logger): Promise<ModelVersion | null> {
    const state = this.#o.store.rollback(modelId, reason);
    await this.#o.target.swap(modelId, state.current);
    log.warn({ model: modelId, reason, now: state.current?.sha256 ?? "shipped" }, "updated model rolled back");
    return state.current;
  }
}
