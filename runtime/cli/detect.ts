import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../config/errors.js";
import { loadConfig, resolvePath } from "../config/load.js";
import { EXECUTION_PROVIDER } from "../config/sections/models.js";
import { VARIANTS, type VariantName } from "../inference/manifest.js";
import { DETECTION_SCHEMA } from "../config/sections/detection.js";
import type { DetectModel } from "../detect/detectRun.js";
import { createRootLogger } from "../log/logger.js";
import { printProblems } from "./checkConfig.js";
import { EXIT_CONFIG, EXIT_FATAL, flag, flags, usageError, type CliCommand } from "./command.js";
import { MODEL_SCHEMA } from "../config/sections/models.js";

/** The `--json` output's version: a field's meaning changes only with a new number. */
export const DETECT_JSON_V = 1;

const IMAGE = /\.(jpe?g|png|webp|bmp|tiff?|gif|avif)$/i;
const LIVE = /^(rtsps?|https?):\/\//i;
const APP_MODELS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../models");
/** Flags that take a value (so their values are not taken for INPUT). */
const VALUED = [
  "--model",
  "--config",
  "--camera",
  "--line",
  "--out",
  "--fps",
  "--duration",
  "--classes",
  "--score",
  "--providers",
  "--threads",
  "--variant",
];

class UsageError extends Error {}

/** `--line x1,y1,x2,y2[,id]`, normalized coordinates. */
export function parseLine(text: string, index: number): { id: string; from: [number, number]; to: [number, number] } {
  const parts = text.split(",");
  const nums = parts.slice(0, 4).map(Number);
  if (parts.length < 4 || parts.length > 5 || nums.some((v) => !Number.isFinite(v) || v < 0 || v > 1)) {
    throw new UsageError(`--line "${text}": expected x1,y1,x2,y2[,id] with each coordinate 0..1 of the picture`);
  }
  const id = parts[4]?.trim() || `line${index + 1}`;
  if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new UsageError(`--line "${text}": the id may hold letters, digits, _ and - only`);
  return { id, from: [nums[0]!, nums[1]!], to: [nums[2]!, nums[3]!] };
}

/** `--model`: a manifest file, a model id of `--config`, or a folder under ./models or the app's models/. */
export function resolveModel(arg: string, configFile: string | undefined, overrides: Partial<DetectModel>): { model: DetectModel; camera?: unknown } {
  // Unset options are the config schema's defaults for a model, so the command runs a model as the daemon would.
  const defaults = MODEL_SCHEMA.parse({ id: "detect", manifest: arg });
  const base = {
    providers: overrides.providers ?? defaults.providers,
    threads: overrides.threads ?? defaults.threads,
    variant: overrides.variant ?? defaults.variant,
  };
  if (configFile) {
    const loaded = loadConfig(configFile);
    const m = loaded.config.models.find((x) => x.id === arg);
    if (m) {
      return {
        model: {
          id: m.id,
          manifestFile: resolvePath(loaded, m.manifest),
          providers: overrides.providers ?? m.providers,
          threads: overrides.threads ?? m.threads,
          variant: overrides.variant ?? m.variant,
        },
      };
    }
    if (!arg.endsWith(".json"))
      throw new UsageError(
        `--model "${arg}": no such model in ${configFile} (models: ${loaded.config.models.map((x) => x.id).join(", ") || "none"})`,
      );
  }
  if (arg.endsWith(".json") || (existsSync(arg) && !arg.endsWith(".onnx"))) {
    if (!existsSync(arg)) throw new UsageError(`--model "${arg}": file not found`);
    return { model: { id: path.basename(path.dirname(path.resolve(arg))), manifestFile: path.resolve(arg), ...base } };
  }
  if (arg.endsWith(".onnx"))
    throw new UsageError(`--model "${arg}" is an ONNX file: add it first (cityedge models add ${arg}), then pass its id or manifest`);
  for (const dir of [path.resolve("models"), APP_MODELS]) {
    const file = path.join(dir, arg, "manifest.json");
    if (existsSync(file)) return { model: { id: arg, manifestFile: file, ...base } };
  }
  throw new UsageError(`--model "${arg}": not a manifest file, and no models/${arg}/manifest.json here or in ${APP_MODELS}`);
}

function numberFlag(args: string[], name: string, min: number, max: number): number | undefined {
  const v = flag(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`${name} must be a number ${min}..${max}, got "${v}"`);
  return n;
}

function inputOf(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (VALUED.includes(a)) {
      i++;
      continue;
    }
    if (!a.startsWith("--")) return a;
  }
  return undefined;
}

const countsText = (counts: Record<string, { in: number; out: number }>) => {
  const entries = Object.entries(counts);
  const total = entries.reduce((t, [, c]) => ({ in: t.in + c.in, out: t.out + c.out }), { in: 0, out: 0 });
  const per = entries.map(([label, c]) => `${label} in ${c.in} out ${c.out}`).join("; ");
  return `${per ? `${per}; ` : ""}total in ${total.in} out ${total.out}`;
};

export const detectCommand: CliCommand = {
  name: "detect",
  synopsis: "detect --model ID|MANIFEST INPUT",
  summary: "detect objects in a picture, or count a video or camera with the daemon's pipeline",
  help: `Usage: cityedge detect --model ID|MANIFEST INPUT [options]

INPUT is a picture (.jpg, .png, …), a video file, or a camera URL (rtsp://, http(s)://).
A picture: prints the objects found (--out writes it with the boxes drawn).
A video file or a camera: runs the daemon's own pipeline on it (camera driver, decoder, NMS,
tracker, line and zone counter), a file as fast as detection goes, a camera for --duration
seconds or until Ctrl-C; prints the counts per line, class and direction and the frames per
second (--out writes the annotated video).

  --model ID|FILE      a model id of --config, a manifest.json, or models/ID/manifest.json
                       (here or in the app's models/)
  --config FILE        take the model (manifest, providers, threads, variant) from this config
  --variant NAME       the manifest's variant to run: auto (default), fp32, fp16, int8, int8_sym
  --camera ID          with --config: take that camera's detection settings (classes, lines,
                       zones, thresholds, tracker)
  --line x1,y1,x2,y2[,id]  a counting line, coordinates 0..1 of the picture; repeatable.
                       "in" is a crossing from the left of x1,y1→x2,y2 to its right
  --classes a,b,…      labels to keep (default: all of the model's)
  --score S            least score (default: the manifest's)
  --fps N              frames per second taken from a video or camera (default 60: every frame
                       of a file up to 60 fps)
  --duration S         stop a camera after S seconds
  --providers a,b      execution providers to try, in order (default tensorrt,cuda,cpu)
  --threads N          CPU threads (default 2)
  --out FILE           write the picture (.jpg/.png) or the video (.mp4) with the boxes drawn
  --json               print one JSON object instead of text (see docs/detection.md: stable,
                       versioned by its "v")

Exit codes: 0 done, 64 bad command line, 78 bad config or manifest, 1 the input or the model failed.`,

  async run(args) {
    const json = args.includes("--json");
    const log = createRootLogger({
      level: process.env.CITYEDGE_LOG_LEVEL ?? "warn",
      pretty: !json && process.stderr.isTTY,
      destination: process.stderr,
    });
    let input: string | undefined;
    try {
      const modelArg = flag(args, "--model");
      input = inputOf(args);
      if (!modelArg) return usageError(detectCommand, "missing --model");
      if (!input) return usageError(detectCommand, "missing INPUT");
      const configFile = flag(args, "--config");
      const providersArg = flag(args, "--providers");
      const providers = providersArg?.split(",").map((p) => {
        const r = EXECUTION_PROVIDER.safeParse(p.trim());
        if (!r.success) throw new UsageError(`--providers: unknown provider "${p}" (known: tensorrt, cuda, cpu)`);
        return r.data;
      });
      const threads = numberFlag(args, "--threads", 1, 64);
      const variantArg = flag(args, "--variant");
      if (variantArg !== undefined && variantArg !== "auto" && !(VARIANTS as readonly string[]).includes(variantArg))
        throw new UsageError(`--variant: unknown variant "${variantArg}" (known: auto, ${VARIANTS.join(", ")})`);
      const variant = variantArg as VariantName | "auto" | undefined;
      const { model } = resolveModel(modelArg, configFile, {
        ...(providers ? { providers } : {}),
        ...(threads !== undefined ? { threads } : {}),
        ...(variant !== undefined ? { variant } : {}),
      });
      let detectionIn: Record<string, unknown> = {};
      const cameraId = flag(args, "--camera");
      if (cameraId) {
        if (!configFile) throw new UsageError("--camera needs --config");
        const cam = loadConfig(configFile).config.cameras.find((c) => c.id === cameraId);
        if (!cam) throw new UsageError(`--camera "${cameraId}": no such camera in ${configFile}`);
        detectionIn = { ...cam.detection };
      }
      const lines = flags(args, "--line").map(parseLine);
      if (lines.length > 0) detectionIn.lines = lines;
      const classes = flag(args, "--classes");
      if (classes) detectionIn.classes = classes.split(",").map((c) => c.trim());
      const score = numberFlag(args, "--score", 0.01, 1);
      if (score !== undefined) detectionIn.score_threshold = score;
      const parsed = DETECTION_SCHEMA.safeParse(detectionIn);
      if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      const detection = parsed.data;
      const out = flag(args, "--out");
      const { detectImage, detectStream, drawImage } = await import("../detect/detectRun.js");

      if (IMAGE.test(input) && !LIVE.test(input)) {
        if (!existsSync(input)) throw new UsageError(`INPUT "${input}": file not found`);
        const r = await detectImage(input, { model, detection, log });
        if (out) await drawImage(input, r.objects, out);
        if (json) process.stdout.write(`${JSON.stringify({ v: DETECT_JSON_V, kind: "image", input, model: model.id, ...r })}\n`);
        else {
          process.stdout.write(
            `${input}: ${r.objects.length} objects (${r.width}x${r.height}; ${model.id} on ${r.provider}, ${r.inference_ms} ms)\n`,
          );
          for (const o of r.objects) process.stdout.write(`  ${o.label.padEnd(14)} ${o.score.toFixed(2)}  [${o.box_px.join(", ")}]\n`);
          if (out) process.stdout.write(`wrote ${out}\n`);
        }
        return 0;
      }
      const live = LIVE.test(input);
      if (!live && !existsSync(input.replace(/^file:\/\//, ""))) throw new UsageError(`INPUT "${input}": file not found`);
      const fps = numberFlag(args, "--fps", 0.1, 60) ?? (live ? 10 : 60);
      const duration = numberFlag(args, "--duration", 1, 31 * 86_400);
      let onSignal: (() => void) | undefined;
      const stop = new Promise<void>((resolve) => (onSignal = resolve));
      process.once("SIGINT", onSignal!);
      process.once("SIGTERM", onSignal!);
      const r = await detectStream(input, {
        model,
        detection,
        log,
        fps,
        stop,
        ...(duration !== undefined ? { durationMs: duration * 1000 } : {}),
        ...(out ? { out } : {}),
      });
      process.off("SIGINT", onSignal!);
      process.off("SIGTERM", onSignal!);
      if (json) process.stdout.write(`${JSON.stringify({ v: DETECT_JSON_V, kind: live ? "stream" : "video", input, model: model.id, ...r })}\n`);
      else {
        process.stdout.write(
          `${input}: ${r.frames} frames in ${r.seconds} s (${r.fps} fps, ${r.inference_ms_avg ?? "-"} ms per frame; ${model.id} on ${r.provider}${r.dropped > 0 ? `; ${r.dropped} frames dropped` : ""}${r.skipped > 0 ? `; ${r.skipped} still frames skipped by motion gating` : ""})\n`,
        );
        for (const l of r.lines) process.stdout.write(`  line ${l.line_id}: ${countsText(l.counts)}\n`);
        for (const z of r.zones)
          process.stdout.write(
            `  zone ${z.zone_id}: entered ${
              Object.entries(z.entered)
                .map(([k, v]) => `${k} ${v}`)
                .join(", ") || "none"
            }\n`,
          );
        if (r.lines.length === 0 && r.zones.length === 0) process.stdout.write("  (no --line given: nothing counted)\n");
        if (out) process.stdout.write(`wrote ${out}\n`);
      }
      return 0;
    } catch (err) {
      if (err instanceof UsageError) return usageError(detectCommand, err.message);
      if (err instanceof ConfigError) {
        printProblems(err);
        return EXIT_CONFIG;
      }
      if ((err as Error).name === "ManifestError") {
        process.stderr.write(`cityedge detect: ${(err as Error).message}\n`);
        return EXIT_CONFIG;
      }
      process.stderr.write(`cityedge detect: ${input ?? ""}: ${(err as Error).message}\n`);
      return EXIT_FATAL;
    }
  },
};
