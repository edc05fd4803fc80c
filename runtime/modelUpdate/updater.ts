import type { KeyObject } from "node:crypto";
import { rmSync } from "node:fs";
import type { VariantName } from "../inference/manifest.js";
import type { Logger } from "../log/logger.js";
import { redactUrl } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import { CommandError } from "../commands/types.js";
import { download } from "./download.js";
import { verifyFileSignature } from "./signature.js";
import type { ModelStore, ModelVersion } from "./store.js";
import type { ModelSwapTarget } from "./swap.js";

/** Clean runs on real frames after which a swapped-in model is trusted. */
const PROBATION_RUNS = 3;

export interface UpdateRequest {
  model: string;
  url: string;
  sha256: string;
  signature?: string;
  variant?: VariantName;
}

export interface ModelUpdaterOptions {
  store: ModelStore;
  target: ModelSwapTarget;
  /** When set, every update must carry a valid Ed25519 signature of the file. */
  publicKey?: KeyObject;
  /** Set when update_model cannot run (a bad public key): every request is refused with it. */
  disabled?: string;
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

  async update(req: UpdateRequest, log: Logger): Promise<Record<string, unknown>> {
    const { store, target } = this.#o;
    if (this.#o.disabled !== undefined) throw new CommandError("rejected", `update_model is disabled: ${this.#o.disabled}`);
    const counter = this.#o.metrics.counter("cityedge_model_updates_total");
    const ids = target.modelIds();
    if (!ids.includes(req.model)) throw new CommandError("not_found", `unknown model "${req.model}" (models: ${ids.join(", ") || "none"})`);
    if (this.#o.publicKey && req.signature === undefined) {
      counter.inc({ model: req.model, outcome: "rejected" });
      throw new CommandError("rejected", "a signature is required: commands.model_update.public_key is set");
    }
    const expected = req.sha256.toLowerCase();
    const staged = store.stagingPath(req.model);
    let got;
    try {
      got = await download(req.url, staged, { maxBytes: this.#o.maxBytes, timeoutMs: this.#o.timeoutMs, log, signal: this.#abort.signal });
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
    if (this.#o.publicKey && !verifyFileSignature(staged, req.signature!, this.#o.publicKey))
      reject("signature does not verify with commands.model_update.public_key");

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
    const state = store.commit(req.model, version);
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
