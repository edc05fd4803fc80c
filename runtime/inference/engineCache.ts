import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "../log/logger.js";

/**
 * Everything a TensorRT engine depends on. onnxruntime names its engine files by the subgraph's
 * node names and the GPU's compute capability, not by the weights, the precision, the profile or
 * the TensorRT version, so one cache folder per distinct set of these keeps a changed model,
 * precision, batch profile, TensorRT version or GPU from ever loading a stale engine.
 */
export interface EngineKeyParts {
  model: string;
  variant: string;
  /** SHA-256 of the model file, as the manifest states and the load verified. */
  sha256: string;
  fp16: boolean;
  int8: boolean;
  /** trt_profile_min/opt/max_shapes, or null for a model with fixed shapes. */
  profile: { min: string; opt: string; max: string } | null;
  workspaceBytes: number;
  builderOptimizationLevel: number;
  dlaCore: number | null;
  cudaGraph: boolean;
  /** TensorRT's version (libnvinfer), or null when not found. */
  tensorrt: string | null;
  /** The GPU: name and compute capability, with the device id. */
  gpu: string;
  /** onnxruntime's version: its engine serialization goes with it. */
  onnxruntime: string;
}

/** Files of ours in a cache folder (the rest are onnxruntime's and TensorRT's). */
const KEY_FILE = "cityedge-engine-key.json";
/** Folders kept per model besides the one in use: a rollback to the previous model or setting does not rebuild. */
const KEEP = 2;

/** The folder name for a set of parts: a hash of all of them (the key file inside says which). */
export function engineCacheKey(parts: EngineKeyParts): string {
  const record = parts as unknown as Record<string, unknown>;
  const canonical = JSON.stringify(
    Object.keys(record)
      .sort()
      .map((k) => [k, record[k]]),
  );
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/** The timing cache depends only on TensorRT and the GPU: shared by a model's engines of every precision and profile. */
export function timingCacheKey(parts: Pick<EngineKeyParts, "tensorrt" | "gpu">): string {
  return (
    "timing-" +
    createHash("sha256")
      .update(JSON.stringify([parts.tensorrt, parts.gpu]))
      .digest("hex")
      .slice(0, 12)
  );
}

export interface EngineDir {
  dir: string;
  key: string;
  timingDir: string;
  /** True when the folder already held an engine: this start loads it instead of building. */
  cached: boolean;
}

function hasEngine(dir: string): boolean {
  try {
    return readdirSync(dir).some((f) => f.endsWith(".engine"));
  } catch {
    return false;
  }
}

/**
 * Creates (or reuses) the engine folder for `parts` under `cacheDir`, records the parts in it,
 * marks it as used now, and removes all but the most recently used other engine folders.
 */
export function prepareEngineDir(cacheDir: string, parts: EngineKeyParts, log?: Logger): EngineDir {
  const key = engineCacheKey(parts);
  const dir = path.join(cacheDir, key);
  const timingDir = path.join(cacheDir, timingCacheKey(parts));
  mkdirSync(dir, { recursive: true });
  mkdirSync(timingDir, { recursive: true });
  const cached = hasEngine(dir);
  const keyFile = path.join(dir, KEY_FILE);
  writeFileSync(keyFile, JSON.stringify({ ...parts, key }, null, 2) + "\n");
  const now = new Date();
  utimesSync(dir, now, now);
  const others = readdirSync(cacheDir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name !== key && /^[0-9a-f]{16}$/.test(e.name))
    .map((e) => ({ name: e.name, mtime: statSync(path.join(cacheDir, e.name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const old of others.slice(KEEP)) {
    rmSync(path.join(cacheDir, old.name), { recursive: true, force: true });
    log?.info({ dir: path.join(cacheDir, old.name) }, "old TensorRT engine cache removed");
  }
  return { dir, key, timingDir, cached };
}

/** True once the folder holds an engine (after a build). */
export function engineBuilt(dir: string): boolean {
  return hasEngine(dir);
}

/**
 * Removes a folder prepared for a session that was never created (no TensorRT on this device),
 * so a CPU-only device does not collect empty cache folders; the timing folder too when empty.
 */
export function discardEngineDir(e: EngineDir): void {
  rmSync(e.dir, { recursive: true, force: true });
  try {
    if (readdirSync(e.timingDir).length === 0) rmSync(e.timingDir, { recursive: true, force: true });
  } catch {
    // already gone
  }
}
