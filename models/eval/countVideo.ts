/**
 * End-to-end counting on a ground-truth video: ffmpeg decodes and letterboxes every frame with
 * the camera driver's filter, the runtime's TensorBuffer converts it, the detector runs through
 * onnxruntime-node, and the runtime's own decoder (any layout), NMS, tracker and line counter
 * (runtime/detect) turn its output into counts, which are compared with the video's true counts
 * (models/synthetic/*.gt.json).
 *
 *   npx tsx models/eval/countVideo.ts [--manifest FILE] [--variant fp32|int8] [--threads N] [--gt FILE.gt.json] [--write]
 *
 * `--gt` counts another ground-truth video (e.g. one rendered by models/synthetic/make_video.py
 * with another seed) instead of the demo; `--manifest` (default models/vehicles/manifest.json,
 * absolute or relative) names the model; `--write` records the demo's figures in
 * counting.<variant>.json beside the manifest.
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { Counter } from "../../runtime/detect/counting.js";
import { letterboxFilter } from "../../drivers/camera/letterbox.js";
import { decode, roleTensors } from "../../runtime/detect/decoders/index.js";
import { loadDetectionManifest } from "../../runtime/detect/detectionManifest.js";
import { fitLetterbox, toSourceNormalized } from "../../runtime/detect/letterbox.js";
import { nms } from "../../runtime/detect/nms.js";
import { Tracker } from "../../runtime/detect/tracker.js";
import type { Detection } from "../../runtime/detect/types.js";
import { TensorBuffer } from "../../runtime/inference/tensorBuffer.js";
import type { DetectorManifest } from "./detection.js";

export interface GroundTruth {
  video: string;
  fps: number;
  width: number;
  height: number;
  frames: number;
  lines: { id: string; from: [number, number]; to: [number, number] }[];
  counts: Record<string, Record<string, { in: number; out: number }>>;
}

export interface CountResult {
  frames: number;
  counted: Record<string, Record<string, { in: number; out: number }>>;
  truth: Record<string, Record<string, { in: number; out: number }>>;
  total_counted: number;
  total_true: number;
  /** |counted − true| / true over all classes and directions of all lines. */
  total_error_pct: number;
  /** Σ over line, class and direction of |counted − true|, over the true total: errors that cancel in the total do not cancel here. */
  class_direction_error_pct: number;
}

/** Decodes a video to raw frames of the model's input size, letterboxed by the camera driver's own filter. */
async function* frames(video: string, m: DetectorManifest, fps: number): AsyncGenerator<Buffer> {
  const filter = letterboxFilter(
    {
      width: m.input.width,
      height: m.input.height,
      pixelFormat: m.input.color === "bgr" ? "bgr24" : "rgb24",
      padValue: m.input.letterbox_pad,
      letterbox: m.input.letterbox,
    },
    fps,
  );
  const ff = spawn(
    "ffmpeg",
    [
      "-hide_banner",
      "-loglevel",
      "error",
      "-i",
      video,
      "-vf",
      filter,
      "-f",
      "rawvideo",
      "-pix_fmt",
      m.input.color === "bgr" ? "bgr24" : "rgb24",
      "pipe:1",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const size = m.input.width * m.input.height * 3;
  let buf = Buffer.alloc(0);
  for await (const chunk of ff.stdout) {
    buf = Buffer.concat([buf, chunk as Buffer]);
    while (buf.length >= size) {
      yield buf.subarray(0, size);
      buf = buf.subarray(size);
    }
  }
  const code = await new Promise<number | null>((resolve) => (ff.exitCode !== null ? resolve(ff.exitCode) : ff.on("close", resolve)));
  if (code !== 0) throw new Error(`ffmpeg exited ${code} decoding ${video}`);
}

/**
 * Runs the detector over every frame of a ground-truth video: per frame the detections (decoded,
 * NMS, mapped to the source picture) at score >= `scoreFloor`. NMS keeps a box only against
 * higher-scoring ones, so filtering these at any threshold >= the floor gives exactly what the
 * runtime would have kept at that threshold.
 */
export async function detectVideo(
  modelFile: string,
  m: DetectorManifest,
  gtFile: string,
  opts: { threads?: number; scoreFloor?: number } = {},
): Promise<{ gt: GroundTruth; frames: Detection[][] }> {
  const gt = JSON.parse(readFileSync(gtFile, "utf8")) as GroundTruth;
  const video = path.join(path.dirname(gtFile), gt.video);
  const session = await ort.InferenceSession.create(modelFile, { intraOpNumThreads: opts.threads ?? 2 });
  const lb = fitLetterbox(gt.width, gt.height, m.input.width, m.input.height, m.input.letterbox === "center");
  const floor = opts.scoreFloor ?? m.thresholds.score;
  const buffer = new TensorBuffer(m.input, 1);
  const format = m.input.color === "bgr" ? "bgr24" : "rgb24";
  const out: Detection[][] = [];
  try {
    // Twice the clip's rate: the filter's one-frame-per-slot selection then keeps every frame.
    for await (const px of frames(video, m, gt.fps * 2)) {
      buffer.fill(0, { width: m.input.width, height: m.input.height, format, data: px });
      const res = await session.run({ [m.input.name]: buffer.tensor(1) });
      const raw = decode(m.output, roleTensors(m.output, res), 0, {
        inputWidth: m.input.width,
        inputHeight: m.input.height,
        numClasses: m.labels.length,
        scoreThreshold: floor,
      });
      const mapped: Detection[] = [];
      for (const d of nms(raw, m.thresholds.nms_iou)) {
        const s = toSourceNormalized(d, lb);
        if (s) mapped.push(s);
      }
      out.push(mapped);
    }
  } finally {
    await session.release();
  }
  return { gt, frames: out };
}

/** The runtime's tracker and line counter over per-frame detections, at a score threshold (default: the manifest's). */
export function countDetections(frames: readonly Detection[][], gt: GroundTruth, m: DetectorManifest, score = m.thresholds.score): CountResult {
  // The runtime's defaults (runtime/config/sections/detection.ts, runtime/detect/cameraPipeline.ts).
  const tracker = new Tracker({ iouMatch: 0.3, maxMissed: 15, minHits: 2, highScore: Math.min(0.95, score + 0.2) });
  const counter = new Counter(
    gt.lines.map((l) => ({ id: l.id, from: l.from, to: l.to })),
    [],
    (c) => m.labels[c] ?? String(c),
  );
  frames.forEach((dets, k) => {
    const upd = tracker.update(
      dets.filter((d) => d.score >= score),
      Math.round((k * 1000) / gt.fps),
    );
    counter.observe(
      upd.matched.map((x) => x.track),
      upd.ended.map((x) => x.id),
    );
  });
  const taken = counter.take();
  const counted: CountResult["counted"] = {};
  for (const l of taken.lines) counted[l.line_id] = l.counts;
  const sum = (c: CountResult["counted"]): number =>
    Object.values(c).reduce((s, per) => s + Object.values(per).reduce((a, v) => a + v.in + v.out, 0), 0);
  const totalCounted = sum(counted);
  const totalTrue = sum(gt.counts);
  let absErr = 0;
  for (const line of gt.lines) {
    const c = counted[line.id] ?? {};
    const t = gt.counts[line.id] ?? {};
    for (const label of new Set([...Object.keys(c), ...Object.keys(t)])) {
      for (const dir of ["in", "out"] as const) absErr += Math.abs((c[label]?.[dir] ?? 0) - (t[label]?.[dir] ?? 0));
    }
  }
  return {
    frames: frames.length,
    counted,
    truth: gt.counts,
    total_counted: totalCounted,
    total_true: totalTrue,
    total_error_pct: Number(((100 * Math.abs(totalCounted - totalTrue)) / totalTrue).toFixed(2)),
    class_direction_error_pct: Number(((100 * absErr) / totalTrue).toFixed(2)),
  };
}

export async function countVideo(modelFile: string, m: DetectorManifest, gtFile: string, opts: { threads?: number } = {}): Promise<CountResult> {
  const { gt, frames: dets } = await detectVideo(modelFile, m, gtFile, opts);
  return countDetections(dets, gt, m);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const manifestFile = path.resolve(arg("--manifest") ?? path.join(ROOT, "models/vehicles/manifest.json"));
  const variant = (arg("--variant") ?? "fp32") as keyof DetectorManifest["files"];
  const threads = arg("--threads");
  const gt = arg("--gt");
  if (gt !== undefined && process.argv.includes("--write")) throw new Error("--write records the demo video's figures: drop --gt");
  const m = loadDetectionManifest(manifestFile);
  const file = m.files[variant];
  if (!file) throw new Error(`${manifestFile} has no ${variant} variant (has: ${Object.keys(m.files).join(", ")})`);
  const r = await countVideo(
    file,
    m,
    gt !== undefined ? path.resolve(gt) : path.join(ROOT, "models/synthetic/demo.gt.json"),
    threads !== undefined ? { threads: Number(threads) } : {},
  );
  console.log(JSON.stringify({ variant, ...(gt !== undefined ? { gt: path.resolve(gt) } : {}), ...r }, null, 2));
  if (process.argv.includes("--write"))
    writeFileSync(path.join(path.dirname(manifestFile), `counting.${variant}.json`), JSON.stringify({ variant, ...r }, null, 2) + "\n");
}
