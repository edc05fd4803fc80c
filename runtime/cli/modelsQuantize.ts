import path from "node:path";
import { createRootLogger } from "../log/logger.js";
import { EXIT_FATAL, flag, flags, usageError, type CliCommand } from "./command.js";
import { resolveModel } from "./detect.js";
import { EXIT_MODEL, positional } from "./modelsAdd.js";

const VALUED = [
  "--method",
  "--calibrate",
  "--frames",
  "--holdout",
  "--min-agreement",
  "--percentile",
  "--sample-fps",
  "--config",
  "--variants",
  "--threads",
];

function numberArg(args: string[], name: string, min: number, max: number, integer: boolean): number | undefined | string {
  const v = flag(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
    return `${name} must be ${integer ? "an integer" : "a number"} ${min}..${max}, got "${v}"`;
  return n;
}

export const modelsQuantizeCommand: CliCommand = {
  name: "models quantize",
  synopsis: "models quantize ID --calibrate SOURCE...",
  summary: "make INT8 variants of a detector from its own frames, validated against fp32",
  help: `Usage: cityedge models quantize ID|MANIFEST --calibrate SOURCE... [options]

Static INT8 quantization (QDQ) of a detector added with cityedge models add, on the device, from
its own frames. SOURCE is camera:ID (a camera of --config), a folder of pictures, or a video file;
--calibrate may be repeated. Frames are letterboxed and preprocessed exactly as the detector does
it; calibration and held-out frames alternate through the sources.

  1. onnxruntime's basic optimizer folds the batch norms into the convolutions;
  2. every Conv/MatMul/Gemm input and the activations between them (SiLU, Add, Concat, Resize,
     MaxPool, …) are calibrated over --frames frames: a histogram per tensor, and a range chosen
     from it (--method);
  3. weights become int8, symmetric, per output channel; activations get QuantizeLinear /
     DequantizeLinear pairs. Two variants are written beside the manifest:
       int8      uint8 activations (zero point per tensor): onnxruntime's CPU provider fuses them
                 into QLinearConv and the other QLinear kernels (auto takes it on the CPU);
       int8_sym  int8 activations, zero point 0 everywhere: the form TensorRT imports (auto takes
                 it on TensorRT); slow on the CPU provider, which does not fuse it.
  4. each variant runs on the --holdout frames; its detections are matched to fp32's (same class,
     IoU >= 0.5). A variant whose recall or precision is below --min-agreement is written but not
     enabled, and the reason is printed and recorded in the manifest (key quantization).

  --calibrate SOURCE     camera:ID, a picture folder or a video file (repeatable)
  --config FILE          the config that has the cameras (and may name the model ID)
  --frames N             calibration frames (default 32)
  --holdout M            validation frames held back from calibration (default 32)
  --min-agreement R      recall and precision a variant needs against fp32 (default 0.95)
  --method mse|percentile  mse (default): per tensor, the range (percentiles 90..100 of its
                         histogram) of least quantization error; percentile: --percentile
  --percentile P         with --method percentile, the percentile its range keeps (default 99.99)
  --sample-fps F         frames per second taken from a video or camera (default 2)
  --min-steps K          an activation whose median magnitude is under K quantization steps stays
                         float, with the convolution reading it (default 4; 0: quantize all)
  --variants LIST        int8,int8_sym (default both)
  --threads N            CPU threads for calibration and validation (default 2)
  --json                 print one JSON object

Exit codes: 0 every variant enabled, 64 bad command line, 65 a variant refused or the model
cannot be quantized (the reason is printed).`,

  async run(args) {
    const id = positional(args, VALUED);
    if (id === undefined) return usageError(modelsQuantizeCommand, "missing ID");
    const sources = flags(args, "--calibrate");
    if (sources.length === 0) return usageError(modelsQuantizeCommand, "missing --calibrate SOURCE");
    const nums: Record<string, number | undefined> = {};
    for (const [name, min, max, integer] of [
      ["--frames", 1, 10_000, true],
      ["--holdout", 1, 10_000, true],
      ["--min-agreement", 0, 1, false],
      ["--percentile", 50, 100, false],
      ["--sample-fps", 0.01, 60, false],
      ["--threads", 1, 64, true],
      ["--min-steps", 0, 1000, false],
    ] as const) {
      const v = numberArg(args, name, min, max, integer);
      if (typeof v === "string") return usageError(modelsQuantizeCommand, v);
      nums[name] = v;
    }
    const variantsArg = flag(args, "--variants");
    const variants = variantsArg?.split(",").map((v) => v.trim());
    if (variants?.some((v) => v !== "int8" && v !== "int8_sym"))
      return usageError(modelsQuantizeCommand, `--variants: known variants are int8 and int8_sym, got "${variantsArg}"`);
    const methodArg = flag(args, "--method");
    if (methodArg !== undefined && methodArg !== "mse" && methodArg !== "percentile")
      return usageError(modelsQuantizeCommand, `--method must be mse or percentile, got "${methodArg}"`);
    const configFile = flag(args, "--config");
    const { model } = resolveModel(id, configFile, {});
    const { quantizeModel, QuantizeError } = await import("../detect/quantize.js");
    const log = createRootLogger({ level: "warn", pretty: false, destination: process.stderr });
    let result;
    try {
      result = await quantizeModel({
        manifestFile: model.manifestFile,
        sources,
        ...(configFile ? { configFile } : {}),
        ...(nums["--frames"] !== undefined ? { frames: nums["--frames"] } : {}),
        ...(nums["--holdout"] !== undefined ? { holdout: nums["--holdout"] } : {}),
        ...(nums["--min-agreement"] !== undefined ? { minAgreement: nums["--min-agreement"] } : {}),
        ...(nums["--percentile"] !== undefined ? { percentile: nums["--percentile"] } : {}),
        ...(methodArg !== undefined ? { method: methodArg } : {}),
        ...(nums["--min-steps"] !== undefined ? { minSteps: nums["--min-steps"] } : {}),
        ...(nums["--sample-fps"] !== undefined ? { sampleFps: nums["--sample-fps"] } : {}),
        ...(nums["--threads"] !== undefined ? { threads: nums["--threads"] } : {}),
        ...(variants ? { variants: variants as ("int8" | "int8_sym")[] } : {}),
        log,
      });
    } catch (err) {
      if (err instanceof QuantizeError) {
        process.stderr.write(`cityedge models quantize: ${id}: ${err.message}\n`);
        return EXIT_MODEL;
      }
      throw err;
    }
    if (args.includes("--json")) process.stdout.write(`${JSON.stringify({ v: 1, ...result })}\n`);
    else {
      const w = (s: string) => process.stdout.write(`${s}\n`);
      const c = result.calibration;
      w(`quantized ${result.id}: ${c.frames} calibration frames, ${c.holdout} held out (${c.method})`);
      for (const r of result.variants) {
        const fused = r.fused_ops.QLinearConv ?? 0;
        w(`  ${r.variant.padEnd(9)}${path.basename(r.file)}: ${r.enabled ? "enabled" : "NOT enabled"}`);
        w(
          `           recall ${r.recall.toFixed(3)}, precision ${r.precision.toFixed(3)} (${r.matched} of ${r.fp32_objects} fp32 objects matched, ${r.int8_objects} found)`,
        );
        w(
          `           cpu ${r.cpu_ms} ms per run vs fp32 ${r.fp32_cpu_ms} ms; ${fused} of ${r.qdq.mac_nodes} convolutions fused to QLinearConv on the CPU; ${r.qdq.float_tensors.length} activations and ${r.qdq.float_mac_nodes.length} convolutions kept float`,
        );
      }
      w(`manifest: ${result.manifestFile}`);
    }
    for (const r of result.variants)
      if (!r.enabled) process.stderr.write(`cityedge models quantize: ${result.id} ${r.variant} not enabled: ${r.reason ?? ""}\n`);
    if (result.variants.length === 0) return EXIT_FATAL;
    return result.variants.every((r) => r.enabled) ? 0 : EXIT_MODEL;
  },
};
