import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import pino from "pino";
import sharp from "sharp";
import { tryProvider } from "../runtime/cli/doctor.js";
import { loadConfig, resolvePath } from "../runtime/config/load.js";
import { decode, decoderOf, roleTensors } from "../runtime/detect/decoders/index.js";
import { asDetectionManifest, type DetectionManifest } from "../runtime/detect/detectionManifest.js";
import { nms } from "../runtime/detect/nms.js";
import { iou, type Detection } from "../runtime/detect/types.js";
import { bindingDir, bindingInfo } from "../runtime/inference/binding.js";
import { gpuInfo } from "../runtime/inference/gpuInfo.js";
import { loadManifest, type ModelManifest, type VariantName } from "../runtime/inference/manifest.js";
import { DEFAULT_GPU_SETTINGS, gpuSettingsOf, type GpuSettings } from "../runtime/inference/providerOptions.js";
import { createSession, type ModelSession, type ProviderName } from "../runtime/inference/session.js";
import { TensorBuffer } from "../runtime/inference/tensorBuffer.js";
import { warmUp } from "../runtime/inference/warmup.js";
import { percentile, repoRoot, round } from "./benchProcess.js";
import type { Bench, BenchResult } from "./index.js";

/**
 * `cityedge bench gpu` (scripts/gpu-check.sh runs it after `cityedge doctor`): every shipped model
 * (and those of --config=FILE) on every provider that works here, as the daemon opens it (variant
 * auto, its TensorRT and CUDA settings). Per model and provider:
 * - the first start (session open, with TensorRT's engine build into a fresh cache folder) and a
 *   second start on that cache, with whether the engine was cached;
 * - latency at batch 1 (median, p90) and throughput at batch N (pictures per second);
 * - for detection models, agreement with the CPU provider's fp32 result on the held-out pictures:
 *   CPU boxes matched by a box of the same class at IoU >= 0.5, boxes only one side found, and the
 *   largest score difference of a matched pair.
 * Options: --config=FILE, --batch=N (default 4), --runs=N (default 30), --images=N (default 16),
 * --threads=N for the CPU provider (default 2), --models=a,b (folder names or config ids).
 * Without a working GPU provider it says so and measures the CPU alone.
 */
interface ModelUnderTest {
  id: string;
  manifest: ModelManifest;
  providers: readonly ProviderName[];
  variant: VariantName | "auto";
  gpu: GpuSettings;
}

const IOU_MATCH = 0.5;

/** The held-out pictures of the vehicles model, letterboxed into `m`'s input (top-left, pad grey), as the camera driver delivers frames. */
async function pictures(m: DetectionManifest, count: number): Promise<Uint8Array[]> {
  const dir = path.join(repoRoot(), "models", "vehicles", "heldout");
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".jpg"))
    .sort()
    .slice(0, count);
  const { width: W, height: H } = m.input;
  const pad = m.input.letterbox_pad;
  const out: Uint8Array[] = [];
  for (const f of files) {
    const img = sharp(path.join(dir, f)).removeAlpha();
    const meta = await img.metadata();
    const scale = Math.min(W / meta.width, H / meta.height);
    const w = Math.max(1, Math.round(meta.width * scale));
    const h = Math.max(1, Math.round(meta.height * scale));
    const rgb = await img
      .resize(w, h, { fit: "fill" })
      .extend({ right: W - w, bottom: H - h, background: { r: pad, g: pad, b: pad } })
      .raw()
      .toBuffer();
    out.push(m.input.color === "bgr" ? swap(rgb) : rgb);
  }
  return out;
}

function swap(rgb: Uint8Array): Uint8Array {
  const o = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i += 3) {
    o[i] = rgb[i + 2]!;
    o[i + 1] = rgb[i + 1]!;
    o[i + 2] = rgb[i]!;
  }
  return o;
}

/** The daemon's decoding of one picture: the manifest's decoder at its score threshold, then NMS unless the graph has it. */
function detect(m: DetectionManifest, result: ort.InferenceSession.ReturnType, b: number): Detection[] {
  const dets = decode(m.output, roleTensors(m.output, result), b, {
    inputWidth: m.input.width,
    inputHeight: m.input.height,
    numClasses: m.labels.length,
    scoreThreshold: m.thresholds.score,
  });
  return decoderOf(m.output.decoder)?.nmsInGraph === true ? dets : nms(dets, m.thresholds.nms_iou);
}

/** Greedy same-class matching at IoU >= 0.5, best reference score first. */
export function agreement(
  reference: Detection[][],
  other: Detection[][],
): { matched: number; reference: number; extra: number; maxScoreDiff: number } {
  let matched = 0;
  let total = 0;
  let extra = 0;
  let maxDiff = 0;
  reference.forEach((ref, i) => {
    const cand = [...(other[i] ?? [])];
    total += ref.length;
    for (const r of [...ref].sort((a, b) => b.score - a.score)) {
      let best = -1;
      let bestIou = IOU_MATCH;
      cand.forEach((c, j) => {
        const v = c.class_id === r.class_id ? iou(c, r) : 0;
        if (v >= bestIou) {
          best = j;
          bestIou = v;
        }
      });
      if (best < 0) continue;
      matched++;
      maxDiff = Math.max(maxDiff, Math.abs(cand[best]!.score - r.score));
      cand.splice(best, 1);
    }
    extra += cand.length;
  });
  return { matched, reference: total, extra, maxScoreDiff: maxDiff };
}

function feedsOf(s: ModelSession, batch: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const meta of s.session.inputMetadata) {
    if (!meta.isTensor) continue;
    const dims = meta.shape.map((d, i) => (typeof d === "number" && d > 0 ? d : i === 0 ? batch : 1));
    feeds[meta.name] = new ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.5), dims);
  }
  return feeds;
}

async function timeRuns(s: ModelSession, feeds: Record<string, ort.Tensor>, runs: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await s.run(feeds);
    ms.push(performance.now() - t0);
  }
  return ms.sort((a, b) => a - b);
}

function modelsToTest(args: string[]): ModelUnderTest[] {
  const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const only = opt("models")?.split(",");
  const list: ModelUnderTest[] = [];
  const root = path.join(repoRoot(), "models");
  for (const d of readdirSync(root, { withFileTypes: true })) {
    const file = path.join(root, d.name, "manifest.json");
    if (!d.isDirectory() || !existsSync(file)) continue;
    list.push({
      id: d.name,
      manifest: loadManifest(file),
      providers: ["tensorrt", "cuda", "cpu"],
      variant: "auto",
      gpu: DEFAULT_GPU_SETTINGS,
    });
  }
  const config = opt("config");
  if (config !== undefined) {
    const loaded = loadConfig(config);
    for (const m of loaded.config.models) {
      list.push({
        id: `${m.id} (config)`,
        manifest: loadManifest(resolvePath(loaded, m.manifest)),
        providers: m.providers,
        variant: m.variant,
        gpu: gpuSettingsOf(m, "(per run)"),
      });
    }
  }
  return list.filter((m) => only === undefined || only.includes(m.id.replace(" (config)", ""))).sort((a, b) => a.id.localeCompare(b.id));
}

export const gpuBench: Bench = async (args) => {
  const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const batch = Number(opt("batch") ?? 4);
  const runs = Number(opt("runs") ?? 30);
  const images = Number(opt("images") ?? 16);
  const threads = Number(opt("threads") ?? 2);
  const log = pino({ level: "silent" });
  const binding = bindingInfo();
  const hw = gpuInfo([bindingDir()]);
  const works: ProviderName[] = [];
  const summary: Record<string, string> = {};
  for (const p of ["cpu", "cuda", "tensorrt"] as const) {
    const c = await tryProvider(p, binding, hw);
    if (c.works) works.push(p);
    summary[p] = c.works ? `works${c.options && c.options !== "honoured" ? " (options IGNORED: stock binding)" : ""}` : `does not work: ${c.error}`;
  }
  const results: BenchResult[] = [];
  if (!works.includes("cuda") && !works.includes("tensorrt")) {
    summary.note = "no GPU provider works on this machine: the CPU part only";
  }
  results.push({ name: "gpu-check: providers", figures: summary });

  for (const m of modelsToTest(args)) {
    let det: DetectionManifest | undefined;
    try {
      det = asDetectionManifest(m.manifest);
    } catch {
      det = undefined;
    }
    const pics = det ? await pictures(det, images) : [];
    let reference: Detection[][] | undefined;
    if (det && pics.length > 0 && m.manifest.files.fp32 && existsSync(m.manifest.files.fp32)) {
      const cpu = await createSession(m.manifest, { providers: ["cpu"], threads, variant: "fp32", log });
      reference = await detectAll(cpu, det, pics);
      await cpu.release();
    }
    for (const provider of m.providers.filter((p) => works.includes(p))) {
      results.push(await benchOne(m, provider, det, pics, reference, { batch, runs, threads, log }));
    }
  }
  return results;
};

async function detectAll(s: ModelSession, det: DetectionManifest, pics: Uint8Array[]): Promise<Detection[][]> {
  const buffer = new TensorBuffer(det.input, 1);
  const out: Detection[][] = [];
  for (const rgb of pics) {
    buffer.fill(0, { width: det.input.width, height: det.input.height, format: det.input.color === "bgr" ? "bgr24" : "rgb24", data: rgb });
    out.push(detect(det, await s.run({ [det.input.name]: buffer.tensor(1) }), 0));
  }
  return out;
}

async function benchOne(
  m: ModelUnderTest,
  provider: ProviderName,
  det: DetectionManifest | undefined,
  pics: Uint8Array[],
  reference: Detection[][] | undefined,
  o: { batch: number; runs: number; threads: number; log: pino.Logger },
): Promise<BenchResult> {
  const cache = mkdtempSync(path.join(os.tmpdir(), "cityedge-gpu-check-"));
  const gpu: GpuSettings = { ...m.gpu, tensorrt: { ...m.gpu.tensorrt, cacheDir: cache } };
  // A detection model gets the daemon's TensorRT batch profile (1..N); other models their declared shapes.
  const input = det?.input.name;
  const figures: Record<string, number | string> = {};
  let name = `gpu-check: ${m.id} on ${provider}`;
  try {
    const open = (batchInput?: string) =>
      createSession(m.manifest, {
        providers: [provider],
        threads: o.threads,
        variant: m.variant,
        log: o.log,
        gpu,
        ...(batchInput ? { batch: { input: batchInput, max: o.batch } } : {}),
      });
    const first = await open(input);
    name = `gpu-check: ${m.id} on ${provider} (${first.variant}${first.setup.precision ? `, ${first.setup.precision.int8 ? "int8" : first.setup.precision.fp16 ? "fp16" : "fp32"}` : ""})`;
    const dynamic = det ? first.dynamicBatch(det.input.name) : false;
    const top = dynamic ? o.batch : 1;
    let firstRun = 0;
    if (det) {
      const buffer = new TensorBuffer(det.input, top);
      buffer.data.fill(det.input.letterbox_pad);
      const w = await warmUp(first, det.input.name, buffer, 1, top);
      firstRun = w.batches[0]?.firstMs ?? 0;
    } else {
      const t0 = performance.now();
      await first.run(feedsOf(first, 1));
      firstRun = performance.now() - t0;
    }
    figures["first start: open ms (engine build on TensorRT)"] = Math.round(first.openMs);
    figures["first start: first run ms"] = round(firstRun, 1);
    if (first.setup.engine) figures["first start: engine"] = first.setup.engine.cached ? "cached" : "built";
    if (first.setup.ignored) figures["options"] = "IGNORED (stock binding)";

    const b1 = await timeRuns(first, feedsOf(first, 1), o.runs);
    figures["batch 1: ms median"] = round(percentile(b1, 50), 2);
    figures["batch 1: ms p90"] = round(percentile(b1, 90), 2);
    figures["batch 1: pictures/s"] = round(1000 / percentile(b1, 50), 1);
    if (top > 1) {
      const bn = await timeRuns(first, feedsOf(first, top), o.runs);
      figures[`batch ${top}: ms median`] = round(percentile(bn, 50), 2);
      figures[`batch ${top}: pictures/s`] = round((top * 1000) / percentile(bn, 50), 1);
    }
    if (det && reference && pics.length > 0) {
      const a = agreement(reference, await detectAll(first, det, pics));
      figures["agreement with CPU fp32: boxes matched"] = `${a.matched}/${a.reference} (IoU >= ${IOU_MATCH}, same class)`;
      figures["agreement with CPU fp32: boxes only here"] = a.extra;
      figures["agreement with CPU fp32: largest score difference"] = round(a.maxScoreDiff, 4);
    }
    await first.release();
    if (provider !== "cpu") {
      const second = await open(input);
      figures["second start: open ms (cached engine)"] = Math.round(second.openMs);
      if (second.setup.engine) figures["second start: engine"] = second.setup.engine.cached ? "cached" : "built again";
      await second.release();
    }
  } catch (err) {
    figures.failed = (err as Error).message.split("\n")[0]!;
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
  return { name, figures };
}
