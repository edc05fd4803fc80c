/**
 * Chooses the detector's score threshold for counting on validation videos (never the demo
 * video, which is the held-out counting test): each video is run through the model once, then the
 * runtime's tracker and line counter replay it at every threshold.
 *
 *   npx tsx models/eval/tuneCounting.ts [--manifest FILE] --gt models/.cache/val/v5000002.gt.json [--gt ...] [--variants fp32,int8] [--threads 2]
 *
 * Prints per threshold and variant: Σ|total error|, Σ|error| per line, class and direction, and
 * how many videos are within 5 % of their true total; then each video's counts at the manifest's
 * threshold.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { countDetections, detectVideo } from "./countVideo.js";
import { loadDetectionManifest } from "../../runtime/detect/detectionManifest.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
const gts = args.flatMap((a, i) => (args[i - 1] === "--gt" ? [path.resolve(a)] : []));
const value = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const variants = (value("--variants") ?? "fp32,int8").split(",");
const threads = Number(value("--threads") ?? 2);
if (gts.length === 0) throw new Error("name the validation videos with --gt FILE.gt.json (one or more)");
const m = loadDetectionManifest(path.resolve(value("--manifest") ?? path.join(ROOT, "models/vehicles/manifest.json")));
const thresholds = [0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7];
for (const variant of variants) {
  const runs = [];
  const file = m.files[variant as keyof typeof m.files];
  if (!file) throw new Error(`${m.manifest_file} has no ${variant} variant`);
  for (const gt of gts) runs.push(await detectVideo(file, m, gt, { threads, scoreFloor: thresholds[0] }));
  for (const thr of thresholds) {
    let total = 0;
    let classDir = 0;
    let within = 0;
    let truth = 0;
    for (const r of runs) {
      const c = countDetections(r.frames, r.gt, m, thr);
      total += Math.abs(c.total_counted - c.total_true);
      classDir += Math.round((c.class_direction_error_pct * c.total_true) / 100);
      within += c.total_error_pct <= 5 ? 1 : 0;
      truth += c.total_true;
    }
    console.log(
      JSON.stringify({
        variant,
        threshold: thr,
        true_crossings: truth,
        sum_abs_total_error: total,
        sum_abs_class_direction_error: classDir,
        videos_within_5pct: `${within}/${runs.length}`,
      }),
    );
  }
  runs.forEach((r, i) => {
    const c = countDetections(r.frames, r.gt, m);
    const video = path.relative(ROOT, gts[i]!);
    console.log(
      JSON.stringify({
        variant,
        threshold: m.thresholds.score,
        video,
        counted: c.total_counted,
        true: c.total_true,
        total_error_pct: c.total_error_pct,
        class_direction_error_pct: c.class_direction_error_pct,
      }),
    );
  });
}
