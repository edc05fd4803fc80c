/**
 * Measures a detector's results table through onnxruntime-node (CPU provider): mAP@0.5 of every
 * variant of its manifest on a held-out set, and throughput at batch 1 with the same thread count
 * for every variant. Pictures go through the runtime's letterbox, tensor conversion and decoder.
 *
 *   npx tsx models/eval/evalDetector.ts [--manifest FILE] [--heldout DIR] [--write] [--threads 1] [--runs 60]
 *
 * Defaults: models/vehicles/manifest.json and the heldout/ folder beside the manifest; paths may
 * be absolute. --write stores the figures in results.json beside the manifest
 * (test/models.test.ts reproduces the vehicles model's); speed is recorded but never tested.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { loadDetectionManifest } from "../../runtime/detect/detectionManifest.js";
import { TensorBuffer } from "../../runtime/inference/tensorBuffer.js";
import { evaluateDetector, heldoutFrame, readHeldout } from "./detection.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const flagValue = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const manifestFile = path.resolve(flagValue("--manifest") ?? path.join(ROOT, "models/vehicles/manifest.json"));
const DIR = path.dirname(manifestFile);
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const threads = arg("--threads", 1);
const runs = arg("--runs", 60);

const manifest = loadDetectionManifest(manifestFile);
const set = readHeldout(path.resolve(flagValue("--heldout") ?? path.join(DIR, "heldout")));
const round = (v: number, d: number): number => Number(v.toFixed(d));

const accuracy: Record<string, { map50: number; ap50: Record<string, number | null> }> = {};
const speed: Record<string, { threads: number; ms_per_image: number; images_per_s: number }> = {};
const one = new TensorBuffer(manifest.input, 1);
one.fill(0, await heldoutFrame(set, 0, manifest));
for (const [variant, file] of Object.entries(manifest.files)) {
  const r = await evaluateDetector(file, manifest, set, { threads: 2 });
  accuracy[variant] = {
    map50: round(r.map, 4),
    ap50: Object.fromEntries(manifest.labels.map((l, i) => [l, r.ap[i] === null ? null : round(r.ap[i]!, 4)])),
  };
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: "all" });
  const feeds = { [manifest.input.name]: one.tensor(1) };
  for (let i = 0; i < 5; i++) await s.run(feeds);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) await s.run(feeds);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / runs;
  speed[variant] = { threads, ms_per_image: round(ms, 2), images_per_s: round(1000 / ms, 1) };
  await s.release();
  console.error(variant, accuracy[variant], speed[variant]);
}
const summary = {
  heldout: { images: set.images.length, boxes: set.images.reduce((n, l) => n + l.filter((b) => !b[5]).length, 0), seed_base: 9_000_000 },
  accuracy,
  speed,
  int8_speedup: speed.int8 && speed.fp32 ? round(speed.fp32.ms_per_image / speed.int8.ms_per_image, 2) : null,
};
console.log(JSON.stringify(summary, null, 2));
if (process.argv.includes("--write")) writeFileSync(path.join(DIR, "results.json"), JSON.stringify(summary, null, 2) + "\n");
