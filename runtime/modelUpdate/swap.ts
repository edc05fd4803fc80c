import type { Logger } from "../log/logger.js";
import type { ModelManifest, VariantName } from "../inference/manifest.js";
import type { ModelStore, ModelVersion } from "./store.js";

/**
 * The hook update_model needs on whatever runs a model (the inference registry implements it).
 * `swap` loads the version (null: the shipped model from the manifest) into a new session, runs
 * it once on a warm-up input, then replaces the running session atomically and releases the old
 * one. When the new session fails to load or to run it throws and the old one keeps running.
 */
export interface ModelSwapTarget {
  modelIds(): string[];
  swap(modelId: string, version: ModelVersion | null): Promise<{ provider: string }>;
  /** Inference runs and failed runs so far, for the probation after a swap (when the target can tell). */
  runStats?(modelId: string): { runs: number; errors: number; lastError?: string } | undefined;
}

/**
 * The manifest to load for a model: the shipped one, or, after an update, the same manifest
 * with the updated file as its only variant (its sha256 is checked again at load).
 */
export function withVersion(manifest: ModelManifest, version: ModelVersion | null | undefined): ModelManifest {
  if (!version) return manifest;
  const variant: VariantName = version.variant ?? "fp32";
  return { ...manifest, variants: { [variant]: { file: version.file, sha256: version.sha256 } }, files: { [variant]: version.file } };
}

/**
 * Loads a model at start-up, preferring the updated version from the store. When that fails to
 * load, the store rolls back (persisted) and the previous version, then the shipped model, are
 * tried: an update that broke the model cannot keep the device from coming back.
 */
export async function loadWithFallback<T>(
  modelId: string,
  store: ModelStore,
  load: (version: ModelVersion | null) => Promise<T>,
  log: Logger,
): Promise<{ loaded: T; version: ModelVersion | null }> {
  for (;;) {
    const version = store.active(modelId) ?? null;
    try {
      return { loaded: await load(version), version };
    } catch (err) {
      if (version === null) throw err;
      const reason = (err as Error).message;
      const next = store.rollback(modelId, reason);
      log.error(
        { model: modelId, failed_sha256: version.sha256, reason, now: next.current?.sha256 ?? "shipped" },
        "updated model failed to load; rolled back",
      );
    }
  }
}
