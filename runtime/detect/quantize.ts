/**
 * `cityedge models quantize`'s engine: static INT8 QDQ of a detector on the device. The fp32 model
 * goes through onnxruntime's "basic" optimizer (batch norms folded into the convolutions), the
 * activations of the tensors to quantize are calibrated on real frames preprocessed as the
 * detector does it, QDQ pairs and int8 weights are written in (runtime/onnx/qdq.ts), and each
 * variant is checked against fp32 on frames held back from calibration before the manifest enables it.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";
import { createCamera, type Frame } from "../../drivers/camera/index.js";
import { CAMERA_SCHEMA } from "../config/sections/cameras.js";
import { DETECTION_SCHEMA } from "../config/sections/detection.js";
import { loadConfig } from "../config/load.js";
import { DaemonBus } from "../events/index.js";
import { TensorBuffer } from "../inference/index.js";
import { sha256File } from "../inference/manifest.js";
import type { Logger } from "../log/logger.js";
import { readOnnxFile, writeOnnxFile } from "../onnx/index.js";
import {
  activationParams,
  activationTensors,
  MAC_OPS,
  mseRange,
  quantizeQdq,
  TensorHistogram,
  type ActivationScheme,
  type TensorRange,
} from "../onnx/qdq.js";
import { CameraPipeline } from "./cameraPipeline.js";
import { roleTensors } from "./decoders/index.js";
import { loadDetectionManifest, type DetectionManifest } from "./detectionManifest.js";
import { letterboxPicture } from "./detectRun.js";
import type { Detection } from "./types.js";

/** A quantization that cannot be done, naming the thing and the problem. */
export class QuantizeError extends Error {
  override readonly name = "QuantizeError";
}

/** The variants made: `int8` (uint8 activations, for the CPU provider), `int8_sym` (symmetric int8, for TensorRT). */
export const QUANT_VARIANTS = { int8: "u8", int8_sym: "s8" } as const satisfies Record<string, ActivationScheme>;
export type QuantVariant = keyof typeof QUANT_VARIANTS;

export interface QuantizeOptions {
  manifestFile: string;
  /** `camera:ID` (with `configFile`), an image folder, or a video file. */
  sources: readonly string[];
  configFile?: string;
  /** Calibration frames (default 32). */
  frames?: number;
  /** Frames held back for validation (default 32). */
  holdout?: number;
  /** Frames per second taken from a video or camera (default 2). */
  sampleFps?: number;
  /** Percentile of each tensor's values its range keeps, with method "percentile" (default 99.99). */
  percentile?: number;
  /** "mse" (default): per tensor, the candidate range of least quantization error; "percentile": `percentile`. */
  method?: CalibrationMethod;
  /** Recall and precision against fp32 a variant needs to be enabled (default 0.95). */
  minAgreement?: number;
  variants?: readonly QuantVariant[];
  /**
   * An activation whose median magnitude is under this many quantization steps stays float (with
   * the convolution reading it); 0 quantizes every one. Default 4.
   */
  minSteps?: number;
  threads?: number;
  log: Logger;
}

export interface VariantReport {
  variant: QuantVariant;
  file: string;
  sha256: string;
  enabled: boolean;
  /** Why it was not enabled. */
  reason?: string;
  recall: number;
  precision: number;
  fp32_objects: number;
  int8_objects: number;
  matched: number;
  /** Median ms per run on the held-out frames, CPU provider, `threads` threads. */
  cpu_ms: number;
  fp32_cpu_ms: number;
  /** Operator counts of onnxruntime's optimized graph of this file (what the CPU provider runs). */
  fused_ops: Record<string, number>;
  qdq: { activations: number; weights: number; mac_nodes: number; skipped: string[]; float_tensors: string[]; float_mac_nodes: string[] };
}

export interface QuantizeResult {
  id: string;
  manifestFile: string;
  calibration: { sources: string[]; frames: number; holdout: number; method: string; date: string };
  variants: VariantReport[];
}

interface PixelFrame {
  width: number;
  height: number;
  format: "rgb24" | "bgr24";
  data: Buffer;
}

const IMAGE = /\.(jpe?g|png|webp|tiff?|bmp|gif|avif)$/i;

/** Frames from every source in turn, letterboxed to the model's input as the camera driver does it. */
export async function readFrames(
  sources: readonly string[],
  m: DetectionManifest,
  want: number,
  o: { configFile?: string; sampleFps?: number; log: Logger },
): Promise<PixelFrame[]> {
  const out: PixelFrame[] = [];
  const format = m.input.color === "bgr" ? "bgr24" : "rgb24";
  for (const source of sources) {
    if (out.length >= want) break;
    if (!source.startsWith("camera:") && statSync(source, { throwIfNoEntry: false })?.isDirectory()) {
      const files = readdirSync(source)
        .filter((f) => IMAGE.test(f))
        .sort();
      if (files.length === 0) throw new QuantizeError(`--calibrate ${source}: no pictures in the folder`);
      for (const f of files) {
        if (out.length >= want) break;
        const p = await letterboxPicture(path.join(source, f), m);
        out.push({ width: m.input.width, height: m.input.height, format, data: p.pixels });
      }
      continue;
    }
    let cfg;
    if (source.startsWith("camera:")) {
      const id = source.slice("camera:".length);
      if (!o.configFile) throw new QuantizeError(`--calibrate ${source}: a camera needs --config FILE`);
      const cam = loadConfig(o.configFile).config.cameras.find((c) => c.id === id);
      if (!cam) throw new QuantizeError(`--calibrate ${source}: no camera "${id}" in ${o.configFile}`);
      cfg = { ...cam, fps: o.sampleFps ?? 2 };
    } else {
      if (!statSync(source, { throwIfNoEntry: false })?.isFile()) throw new QuantizeError(`--calibrate ${source}: no such file, folder or camera:ID`);
      cfg = CAMERA_SCHEMA.parse({
        id: "calibrate",
        url: `file://${path.resolve(source)}`,
        fps: o.sampleFps ?? 2,
        model: m.id,
        loop: false,
        realtime: false,
        read_as_consumed: true,
      });
    }
    const camera = createCamera(cfg, {
      width: m.input.width,
      height: m.input.height,
      pixelFormat: format,
      padValue: m.input.letterbox_pad,
      letterbox: m.input.letterbox,
      log: o.log.child({ module: "camera" }),
      baseDir: process.cwd(),
    });
    await camera.start();
    try {
      while (out.length < want) {
        const f: Frame | undefined = camera.slot.take();
        if (f) {
          out.push({ width: f.width, height: f.height, format: f.format, data: Buffer.from(f.data) });
          camera.slot.release(f);
          continue;
        }
        if (camera.state === "failed") throw new QuantizeError(`--calibrate ${source}: ${String(camera.health().error ?? "ffmpeg failed")}`);
        if (camera.state === "stopped" && camera.slot.peek() === undefined) break;
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      await camera.stop();
    }
  }
  return out;
}

function inputTensor(m: DetectionManifest, f: PixelFrame): ort.Tensor {
  const buffer = new TensorBuffer(m.input, 1);
  buffer.fill(0, f);
  return buffer.tensor(1);
}

const sessionOptions = (threads: number, extra: ort.InferenceSession.SessionOptions = {}): ort.InferenceSession.SessionOptions => ({
  executionProviders: ["cpu"],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  ...extra,
});

/** onnxruntime's "basic" optimized graph (constants folded, batch norms folded into Conv), written to `out`. */
export async function foldedModel(file: string, out: string): Promise<void> {
  const s = await ort.InferenceSession.create(file, sessionOptions(1, { graphOptimizationLevel: "basic", optimizedModelFilePath: out }));
  await s.release();
  const m = readOnnxFile(out);
  const odd = m.graph.node.filter((n) => n.domain !== undefined && n.domain !== "" && n.domain !== "ai.onnx");
  if (odd.length > 0)
    throw new QuantizeError(
      `${file}: onnxruntime's optimized graph has non-standard operators (${[...new Set(odd.map((n) => `${n.domain}:${n.opType}`))].join(", ")})`,
    );
}

export type CalibrationMethod = "mse" | "percentile";

/** Each tensor's range from its histogram: `percentile`, or the candidate percentile range of least quantization error (`mse`). */
export function rangesOf(
  hists: ReadonlyMap<string, TensorHistogram>,
  o: { method: CalibrationMethod; percentile: number; scheme: ActivationScheme },
): Map<string, TensorRange> {
  return new Map([...hists].map(([t, h]) => [t, o.method === "mse" ? mseRange(h, o.scheme) : h.percentileRange(o.percentile)]));
}

/** Per-tensor histograms over the frames: a first pass finds each tensor's extremes, a second fills its histogram. */
export async function calibrate(
  modelFile: string,
  m: DetectionManifest,
  frames: readonly PixelFrame[],
  o: { threads: number },
): Promise<Map<string, TensorHistogram>> {
  const model = readOnnxFile(modelFile);
  const wanted = activationTensors(model);
  const outputs = new Set(model.graph.output.map((v) => v.name ?? ""));
  const extra = wanted.filter((t) => !outputs.has(t) && t !== m.input.name);
  const probe = { ...model, graph: { ...model.graph, output: [...model.graph.output, ...extra.map((name) => ({ name, metadataProps: [] }))] } };
  const dir = mkdtempSync(path.join(tmpdir(), "cityedge-calibrate-"));
  try {
    const probeFile = path.join(dir, "probe.onnx");
    writeOnnxFile(probeFile, probe);
    const session = await ort.InferenceSession.create(probeFile, sessionOptions(o.threads, { graphOptimizationLevel: "disabled" }));
    // Every output is fetched: onnxruntime-node mismatches some names in an explicit fetch list.
    const fetch = wanted.filter((t) => t !== m.input.name);
    const valuesOf = async (f: PixelFrame): Promise<Map<string, Float32Array>> => {
      const input = inputTensor(m, f);
      const r = await session.run({ [m.input.name]: input });
      const got = new Map<string, Float32Array>();
      if (wanted.includes(m.input.name)) got.set(m.input.name, input.data as Float32Array);
      for (const t of fetch) {
        const v = r[t];
        if (v && v.type === "float32") got.set(t, v.data as Float32Array);
      }
      return got;
    };
    try {
      const extremes = new Map<string, TensorRange>();
      for (const f of frames) {
        for (const [t, v] of await valuesOf(f)) {
          let lo = Infinity;
          let hi = -Infinity;
          for (let i = 0; i < v.length; i++) {
            const x = v[i]!;
            if (x < lo) lo = x;
            if (x > hi) hi = x;
          }
          const e = extremes.get(t);
          extremes.set(t, e ? { min: Math.min(e.min, lo), max: Math.max(e.max, hi) } : { min: lo, max: hi });
        }
      }
      const hists = new Map([...extremes].map(([t, e]) => [t, new TensorHistogram(e.min, e.max)]));
      for (const f of frames) for (const [t, v] of await valuesOf(f)) hists.get(t)!.add(v);
      return hists;
    } finally {
      await session.release();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Agreement {
  recall: number;
  precision: number;
  reference: number;
  candidate: number;
  matched: number;
}

function iou(a: Detection, b: Detection): number {
  const w = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const h = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter);
}

/** Greedy one-to-one matching per frame, best candidate score first: same class and IoU ≥ `minIou`. */
export function agreement(reference: readonly Detection[][], candidate: readonly Detection[][], minIou = 0.5): Agreement {
  let matched = 0;
  let refs = 0;
  let cands = 0;
  for (let i = 0; i < reference.length; i++) {
    const ref = reference[i]!;
    const cand = [...(candidate[i] ?? [])].sort((a, b) => b.score - a.score);
    refs += ref.length;
    cands += cand.length;
    const used = new Set<number>();
    for (const c of cand) {
      let best = -1;
      let bestIou = minIou;
      ref.forEach((r, j) => {
        if (used.has(j) || r.class_id !== c.class_id) return;
        const v = iou(r, c);
        if (v >= bestIou) {
          bestIou = v;
          best = j;
        }
      });
      if (best >= 0) {
        used.add(best);
        matched++;
      }
    }
  }
  return {
    recall: refs === 0 ? 1 : matched / refs,
    precision: cands === 0 ? 1 : matched / cands,
    reference: refs,
    candidate: cands,
    matched,
  };
}

/** Runs a model file on the frames: the detections (the daemon's decoder and NMS) and the median ms per run. */
export async function detectFrames(
  file: string,
  m: DetectionManifest,
  frames: readonly PixelFrame[],
  threads: number,
): Promise<{ detections: Detection[][]; ms: number }> {
  const session = await ort.InferenceSession.create(file, sessionOptions(threads));
  const bus = new DaemonBus();
  bus.on("detections", () => undefined);
  const pipeline = new CameraPipeline({
    cameraId: "quantize",
    modelId: m.id,
    manifest: m,
    detection: DETECTION_SCHEMA.parse({}),
    bus,
    log: silentLog(),
  });
  try {
    const detections: Detection[][] = [];
    const times: number[] = [];
    if (frames[0]) await session.run({ [m.input.name]: inputTensor(m, frames[0]) });
    for (const f of frames) {
      const feeds = { [m.input.name]: inputTensor(m, f) };
      const t0 = performance.now();
      const r = await session.run(feeds);
      times.push(performance.now() - t0);
      detections.push(pipeline.detect(roleTensors(m.output, r), 0));
    }
    times.sort((a, b) => a - b);
    return { detections, ms: times.length > 0 ? Math.round(times[Math.floor(times.length / 2)]! * 100) / 100 : 0 };
  } finally {
    await session.release();
  }
}

function silentLog(): Logger {
  const noop = () => undefined;
  const l = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop, child: () => l, level: "silent" };
  return l as unknown as Logger;
}

/** The operator types of onnxruntime's "extended" optimized graph (QDQ fused into QLinear* kernels where it can). */
export async function fusedOps(file: string, threads: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), "cityedge-fused-"));
  try {
    const out = path.join(dir, "fused.onnx");
    const s = await ort.InferenceSession.create(file, sessionOptions(threads, { graphOptimizationLevel: "extended", optimizedModelFilePath: out }));
    await s.release();
    const counts: Record<string, number> = {};
    for (const n of readOnnxFile(out).graph.node) counts[n.opType ?? ""] = (counts[n.opType ?? ""] ?? 0) + 1;
    return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Quantizes the manifest's fp32 variant, validates each variant on held-out frames and writes the
 * manifest: a variant that agrees with fp32 at `minAgreement` or better is enabled; one below is
 * written, recorded with the reason, and not enabled.
 */
export async function quantizeModel(o: QuantizeOptions): Promise<QuantizeResult> {
  const m = loadDetectionManifest(o.manifestFile);
  const fp32 = m.files.fp32;
  if (!fp32) throw new QuantizeError(`${o.manifestFile}: no fp32 variant to quantize (has: ${Object.keys(m.variants).join(", ")})`);
  const nCal = o.frames ?? 32;
  const nHold = o.holdout ?? 32;
  const threads = o.threads ?? 2;
  const percentile = o.percentile ?? 99.99;
  const minAgreement = o.minAgreement ?? 0.95;
  const minSteps = o.minSteps ?? 4;
  const variants = o.variants ?? (Object.keys(QUANT_VARIANTS) as QuantVariant[]);

  const all = await readFrames(o.sources, m, nCal + nHold, {
    ...(o.configFile ? { configFile: o.configFile } : {}),
    ...(o.sampleFps ? { sampleFps: o.sampleFps } : {}),
    log: o.log,
  });
  // Calibration and validation frames alternate, so both span the sources.
  const cal: PixelFrame[] = [];
  const hold: PixelFrame[] = [];
  all.forEach((f, i) => ((i % 2 === 0 && cal.length < nCal) || hold.length >= nHold ? cal : hold).push(f));
  if (cal.length === 0) throw new QuantizeError(`--calibrate ${o.sources.join(" ")}: no frames read`);
  if (hold.length === 0) throw new QuantizeError(`--calibrate ${o.sources.join(" ")}: ${all.length} frames, none left to validate on (--holdout)`);

  const dir = mkdtempSync(path.join(tmpdir(), "cityedge-quantize-"));
  const reports: VariantReport[] = [];
  const date = new Date().toISOString();
  const how = o.method ?? "mse";
  const method = `${how === "mse" ? "least-MSE range of percentiles 90..100" : `percentile ${percentile}`} per tensor over a 2048-bin histogram; activations with a median under ${minSteps} steps kept float; weights int8 symmetric per output channel; BN folded by onnxruntime (basic)`;
  try {
    const folded = path.join(dir, "folded.onnx");
    await foldedModel(fp32, folded);
    const hists = await calibrate(folded, m, cal, { threads });
    const base = readOnnxFile(folded);
    const ref = await detectFrames(fp32, m, hold, threads);
    const outDir = path.dirname(o.manifestFile);
    for (const variant of variants) {
      const scheme = QUANT_VARIANTS[variant];
      const ranges = rangesOf(hists, { method: how, percentile, scheme });
      const keepFloat = new Set(
        [...ranges].filter(([t, r]) => hists.get(t)!.medianAbs() < minSteps * activationParams(r, scheme).scale).map(([t]) => t),
      );
      const { model, summary } = quantizeQdq(base, { scheme, ranges, keepFloat });
      model.irVersion = Math.max(model.irVersion ?? 7, 7);
      model.producerName = "cityedge models quantize";
      const file = path.join(outDir, `${m.id}.${variant}.onnx`);
      writeOnnxFile(file, model);
      const got = await detectFrames(file, m, hold, threads);
      const a = agreement(ref.detections, got.detections);
      const uncovered = summary.skipped.length;
      const enabled = a.recall >= minAgreement && a.precision >= minAgreement && uncovered === 0;
      const reason = enabled
        ? undefined
        : uncovered > 0
          ? `${uncovered} of ${summary.macNodes} Conv/MatMul/Gemm nodes not quantized (${summary.skipped.slice(0, 3).join("; ")})`
          : `agreement with fp32 on ${hold.length} held-out frames is recall ${a.recall.toFixed(3)}, precision ${a.precision.toFixed(3)}: below --min-agreement ${minAgreement}`;
      reports.push({
        variant,
        file,
        sha256: await sha256File(file),
        enabled,
        ...(reason ? { reason } : {}),
        recall: round(a.recall),
        precision: round(a.precision),
        fp32_objects: a.reference,
        int8_objects: a.candidate,
        matched: a.matched,
        cpu_ms: got.ms,
        fp32_cpu_ms: ref.ms,
        fused_ops: await fusedOps(file, threads),
        qdq: {
          activations: summary.activations,
          weights: summary.weights,
          mac_nodes: summary.macNodes,
          skipped: summary.skipped,
          float_tensors: [...keepFloat],
          float_mac_nodes: summary.float,
        },
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const calibration = { sources: [...o.sources], frames: cal.length, holdout: hold.length, method, date };
  writeManifest(o.manifestFile, reports, calibration, minAgreement);
  return { id: m.id, manifestFile: o.manifestFile, calibration, variants: reports };
}

const round = (v: number) => Math.round(v * 10_000) / 10_000;

function writeManifest(file: string, reports: readonly VariantReport[], calibration: QuantizeResult["calibration"], minAgreement: number): void {
  const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown> & {
    variants: Record<string, unknown>;
    quantization?: Record<string, unknown>;
  };
  const records: Record<string, unknown> = { ...(raw.quantization ?? {}) };
  for (const r of reports) {
    if (r.enabled) raw.variants[r.variant] = { file: path.basename(r.file), sha256: r.sha256 };
    else delete raw.variants[r.variant];
    records[r.variant] = {
      file: path.basename(r.file),
      sha256: r.sha256,
      enabled: r.enabled,
      ...(r.reason ? { reason: r.reason } : {}),
      activations: QUANT_VARIANTS[r.variant] === "s8" ? "int8 symmetric per tensor (zero point 0)" : "uint8 asymmetric per tensor",
      calibration: { ...calibration, min_agreement: minAgreement },
      float_tensors: r.qdq.float_tensors,
      float_mac_nodes: r.qdq.float_mac_nodes,
      agreement: {
        iou: 0.5,
        recall: r.recall,
        precision: r.precision,
        fp32_objects: r.fp32_objects,
        int8_objects: r.int8_objects,
        matched: r.matched,
      },
    };
  }
  raw.quantization = records;
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(raw, null, 2)}\n`);
  // Written whole or not at all; the daemon's parser must still take it.
  loadDetectionManifestText(tmp, file);
}

function loadDetectionManifestText(tmp: string, file: string): void {
  try {
    loadDetectionManifest(tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new QuantizeError(`${file}: the manifest with the quantized variants would not load: ${(err as Error).message}`);
  }
  writeFileSync(file, readFileSync(tmp));
  rmSync(tmp, { force: true });
}

/** The SHA-256 of bytes, hex (for tests comparing two runs). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export { MAC_OPS };
