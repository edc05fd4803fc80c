/**
 * Measures the vehicles detector's results table through onnxruntime-node (CPU provider):
 * mAP@0.5 of every shipped variant on the held-out set, and throughput at batch 1 with the same
 * thread count for every variant.
 *
 *   npx tsx models/eval/evalDetector.ts [--write] [--threads 1] [--runs 60]
 *
 * --write stores the accuracy figures in models/vehicles/results.json (test/models.test.ts
 * reproduces them); speed is printed and recorded there too but never tested.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { evaluateDetector, heldoutPixels, readHeldout, writeInput, type DetectorManifest } from "./detection.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DIR = path.join(ROOT, "models/vehicles");
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const threads = arg("--threads", 1);
const runs = arg("--runs", 60);

const manifest = JSON.parse(readFileSync(path.join(DIR, "manifest.json"), "utf8")) as DetectorManifest & {
  variants: Record<string, { file: string }>;
};
const set = readHeldout(path.join(DIR, "heldout"));
const round = (v: number, d: number): number => Number(v.toFixed(d));

const accuracy: Record<string, { map50: number; ap50: Record<string, number | null> }> = {};
const speed: Record<string, { threads: number; ms_per_image: number; images_per_s: number }> = {};
const one = new Float32Array(3 * manifest.input.width * manifest.input.height);
writeInput(one, 0, await heldoutPixels(set, 0), set.width, set.height, manifest);
for (const [variant, v] of Object.entries(manifest.variants)) {
  const file = path.join(DIR, v.file);
  const r = await evaluateDetector(file, manifest, set, { threads: 2 });
  accuracy[variant] = {
    map50: round(r.map, 4),
    ap50: Object.fromEntries(manifest.labels.map((l, i) => [l, r.ap[i] === null ? null : round(r.ap[i]!, 4)])),
  };
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: "all" });
  const feeds = { [manifest.input.name]: new ort.Tensor("float32", one, [1, 3, manifest.input.height, manifest.input.width]) };
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
