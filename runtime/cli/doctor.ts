import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ort from "onnxruntime-node";
import { ffmpegCaps, resolveFfmpeg } from "../../drivers/camera/ffmpegBinary.js";
import { ConfigError } from "../config/errors.js";
import { loadConfig, resolvePath } from "../config/load.js";
import { bindingDir, bindingInfo, optionsIgnored, type BindingInfo } from "../inference/binding.js";
import { gpuInfo, type GpuInfo } from "../inference/gpuInfo.js";
import { loadManifest, type ModelManifest, type VariantName } from "../inference/manifest.js";
import { probeModel, PROBE_INPUT, PROBE_SHAPE } from "../inference/probeModel.js";
import {
  cudaOptions,
  DEFAULT_GPU_SETTINGS,
  gpuSettingsOf,
  providerEntry,
  tensorRtOptions,
  tensorRtPrecision,
  type GpuSettings,
} from "../inference/providerOptions.js";
import { pickVariant, type ProviderName } from "../inference/session.js";
import { packageVersion } from "../version.js";
import { EXIT_CONFIG, flag, usageError, type CliCommand } from "./command.js";
import { printProblems } from "./checkConfig.js";

const PROVIDERS: readonly ProviderName[] = ["cpu", "cuda", "tensorrt"];
/** The provider libraries a GPU build of onnxruntime puts next to its binding. */
const PROVIDER_LIBS: Record<ProviderName, string | null> = {
  cpu: null,
  cuda: "libonnxruntime_providers_cuda.so",
  tensorrt: "libonnxruntime_providers_tensorrt.so",
};

export interface ProviderCheck {
  name: ProviderName;
  /** The binding lists it (it was compiled in). */
  compiled_in: boolean;
  /** onnxruntime's provider library next to the binding: its path, or null when missing (none for the CPU). */
  provider_library: string | null;
  /** The system libraries it needs, with the versions found. */
  libraries: Record<string, string | null>;
  /** A one-node model was created and run on it. */
  works: boolean;
  ms: number | null;
  error: string | null;
  /** "honoured", or why the provider's settings would not arrive; null for the CPU. */
  options: string | null;
}

export interface ModelCheck {
  id: string;
  manifest: string;
  /** The variant and provider it would load, given the providers that work here; null when none would. */
  provider: ProviderName | null;
  variant: VariantName | null;
  /** TensorRT's build precision for that variant. */
  precision: string | null;
  /** The CPU speed the manifest states for that variant. */
  cpu_ms: number | null;
  problem: string | null;
}

export interface DoctorReport {
  cityedge: string;
  node: string;
  platform: string;
  jetson: GpuInfo["jetson"];
  gpus: GpuInfo["gpus"];
  binding: BindingInfo;
  providers: ProviderCheck[];
  ffmpeg: { path: string; origin: string; version: string; hwaccels: string[]; hardware_decoders: string[] } | { error: string };
  models: ModelCheck[];
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.trim();
}

function entryFor(provider: ProviderName, settings: GpuSettings): ort.InferenceSession.ExecutionProviderConfig {
  if (provider === "cpu") return "cpu";
  // No engine cache: the doctor's one-node engine must not land among the models' engines.
  const options =
    provider === "cuda"
      ? cudaOptions(settings)
      : tensorRtOptions({
          settings: { ...settings, tensorrt: { ...settings.tensorrt, engineCache: false, timingCache: false } },
          fp16: true,
          int8: false,
          profile: null,
        });
  return providerEntry(provider, settings.deviceId, options);
}

/** Creates the one-node model on the provider alone and runs it once. */
export async function tryProvider(
  provider: ProviderName,
  binding: BindingInfo,
  hw: GpuInfo,
  settings = DEFAULT_GPU_SETTINGS,
): Promise<ProviderCheck> {
  const lib = PROVIDER_LIBS[provider];
  const libPath = lib === null ? null : path.join(bindingDir(), lib);
  const libraries: Record<string, string | null> =
    provider === "cpu" ? {} : provider === "cuda" ? { cudart: hw.cuda, cudnn: hw.cudnn } : { nvinfer: hw.tensorrt, cudart: hw.cuda };
  const base = {
    name: provider,
    compiled_in: provider === "cpu" || binding.backends.some((b) => b.name === provider),
    provider_library: libPath !== null && existsSync(libPath) ? libPath : null,
    libraries,
    options: provider === "cpu" ? null : (optionsIgnored(binding, provider) ?? "honoured"),
  };
  const t0 = performance.now();
  try {
    const session = await ort.InferenceSession.create(probeModel(), { executionProviders: [entryFor(provider, settings)], logSeverityLevel: 3 });
    try {
      const x = new ort.Tensor("float32", new Float32Array(PROBE_SHAPE[0] * PROBE_SHAPE[1]).fill(-1), [...PROBE_SHAPE]);
      await session.run({ [PROBE_INPUT]: x });
    } finally {
      await session.release();
    }
    return { ...base, works: true, ms: Math.round(performance.now() - t0), error: null };
  } catch (err) {
    return { ...base, works: false, ms: null, error: firstLine(err) };
  }
}

function run(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(bin, args, { timeout: 10_000, maxBuffer: 4 * 1024 * 1024 }, (err: Error | null, stdout: string) =>
      err ? reject(err) : resolve(stdout),
    ),
  );
}

/** Decoder names that use a hardware engine (NVIDIA's CUVID and Jetson V4L2, V4L2 M2M, VA-API, Quick Sync, Rockchip, Apple, Android). */
const HW_DECODER = /(_cuvid|nvv4l2|_v4l2m2m|_vaapi|_qsv|_rkmpp|_nvmpi|_videotoolbox|_mediacodec)\b/;

async function checkFfmpeg(configured: string | undefined): Promise<DoctorReport["ffmpeg"]> {
  try {
    const bin = resolveFfmpeg(configured);
    const caps = await ffmpegCaps(bin.path);
    const hw = (await run(bin.path, ["-hide_banner", "-hwaccels"])).split("\n").map((l) => l.trim());
    const hwaccels = hw.slice(hw.findIndex((l) => /^Hardware acceleration methods/.test(l)) + 1).filter((l) => l !== "");
    const decoders = (await run(bin.path, ["-hide_banner", "-decoders"]))
      .split("\n")
      .map((l) => /^\s*V\S*\s+(\S+)/.exec(l)?.[1])
      .filter((d): d is string => d !== undefined && HW_DECODER.test(d));
    return { path: bin.path, origin: bin.origin, version: caps.version, hwaccels, hardware_decoders: decoders };
  } catch (err) {
    return { error: firstLine(err) };
  }
}

/** The installed app's root (package.json named cityedge): two folders up from the sources, three from dist/. */
function appRoot(): string {
  for (const rel of ["../..", "../../.."]) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    try {
      if ((JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string }).name === "cityedge") return dir;
    } catch {
      // not this one
    }
  }
  return process.cwd();
}

interface ModelInput {
  id: string;
  manifest: string;
  providers: readonly ProviderName[];
  variant: VariantName | "auto";
  gpu: GpuSettings;
}

function checkModel(m: ModelInput, working: ReadonlySet<ProviderName>, binding: BindingInfo): ModelCheck {
  const out: ModelCheck = { id: m.id, manifest: m.manifest, provider: null, variant: null, precision: null, cpu_ms: null, problem: null };
  let manifest: ModelManifest;
  try {
    manifest = loadManifest(m.manifest);
  } catch (err) {
    return { ...out, problem: firstLine(err) };
  }
  const reasons: string[] = [];
  for (const provider of m.providers) {
    if (!working.has(provider)) {
      reasons.push(`${provider}: does not work here`);
      continue;
    }
    const { variant, order } = pickVariant(provider, manifest, m.variant, m.gpu, binding);
    if (variant === undefined || !existsSync(manifest.files[variant]!)) {
      reasons.push(`${provider}: no ${order.join("/")} file`);
      continue;
    }
    let precision: string | null = null;
    if (provider === "tensorrt") {
      const p = tensorRtPrecision(m.gpu.tensorrt.precision, variant);
      if (typeof p === "string") {
        reasons.push(`tensorrt: ${p}`);
        continue;
      }
      precision = p.int8 ? "int8" : p.fp16 ? "fp16" : "fp32";
    }
    return { ...out, provider, variant, precision, cpu_ms: manifest.variants[variant]?.cpu_ms ?? null };
  }
  return { ...out, problem: reasons.join("; ") };
}

/** Every check, for a config's models or, without one, for the shipped models with the default providers. */
export async function doctor(configFile?: string): Promise<DoctorReport> {
  const binding = bindingInfo();
  const hw = gpuInfo([bindingDir()]);
  const providers: ProviderCheck[] = [];
  for (const p of PROVIDERS) providers.push(await tryProvider(p, binding, hw));
  const working = new Set(providers.filter((p) => p.works).map((p) => p.name));

  let models: ModelInput[];
  let ffmpegPath: string | undefined;
  if (configFile !== undefined) {
    const loaded = loadConfig(configFile);
    ffmpegPath = loaded.config.ffmpeg_path;
    models = loaded.config.models.map((m) => ({
      id: m.id,
      manifest: resolvePath(loaded, m.manifest),
      providers: m.providers,
      variant: m.variant,
      gpu: gpuSettingsOf(m, m.tensorrt.cache_dir ?? "(unused)"),
    }));
  } else {
    const dir = path.join(appRoot(), "models");
    const names = existsSync(dir) ? readdirSync(dir).filter((n) => existsSync(path.join(dir, n, "manifest.json"))) : [];
    models = names.sort().map((n) => ({
      id: n,
      manifest: path.join(dir, n, "manifest.json"),
      providers: ["tensorrt", "cuda", "cpu"],
      variant: "auto",
      gpu: DEFAULT_GPU_SETTINGS,
    }));
  }
  return {
    cityedge: packageVersion(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    jetson: hw.jetson,
    gpus: hw.gpus,
    binding,
    providers,
    ffmpeg: await checkFfmpeg(ffmpegPath),
    models: models.map((m) => checkModel(m, working, binding)),
  };
}

function table(rows: (string | number | null)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null ? "-" : String(c))));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  return cells.map((r) => "  " + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

/** The report for people: one section per subject, a table each. */
export function formatReport(r: DoctorReport): string {
  const out: string[] = [];
  out.push(`cityedge ${r.cityedge} on ${r.platform}, Node ${r.node}`);
  out.push("", "device");
  out.push(
    table([
      ["jetson", r.jetson ? r.jetson.model : "no (not a Jetson)"],
      ["l4t release", r.jetson?.l4t ?? null],
      ...(r.gpus.length > 0
        ? r.gpus.map((g, i) => [`gpu ${i}`, `${g.name}${g.computeCapability ? `, compute capability ${g.computeCapability}` : ""} (${g.source})`])
        : [["gpu", "none found"]]),
    ]),
  );
  const b = r.binding;
  out.push("", "onnxruntime binding");
  out.push(
    table([
      ["file", b.file],
      ["version", b.version],
      ["compiled in", b.backends.map((x) => x.name).join(", ") || null],
      [
        "options patch",
        b.patched ? `yes (passes ${b.honoured.join(", ") || "nothing"})` : "no (stock binding: TensorRT/CUDA get only the device id)",
      ],
    ]),
  );
  out.push("", "providers (a one-node model created and run on each)");
  out.push(
    table([
      ["provider", "compiled in", "provider library", "system libraries", "works", "options", "detail"],
      ...r.providers.map((p) => [
        p.name,
        p.compiled_in ? "yes" : "no",
        p.name === "cpu" ? "built in" : p.provider_library ? "found" : "missing",
        Object.entries(p.libraries)
          .map(([k, v]) => `${k} ${v ?? "not found"}`)
          .join(", ") || null,
        p.works ? `yes (${p.ms} ms)` : "no",
        p.options === null ? null : p.options === "honoured" ? "honoured" : "IGNORED",
        p.works ? (p.options !== null && p.options !== "honoured" ? p.options : null) : p.error,
      ]),
    ]),
  );
  out.push("", "ffmpeg");
  if ("error" in r.ffmpeg) out.push(table([["error", r.ffmpeg.error]]));
  else
    out.push(
      table([
        ["path", `${r.ffmpeg.path} (${r.ffmpeg.origin})`],
        ["version", r.ffmpeg.version],
        ["hwaccels", r.ffmpeg.hwaccels.join(", ") || "none"],
        ["hardware decoders", r.ffmpeg.hardware_decoders.join(", ") || "none"],
      ]),
    );
  out.push("", "models (the variant and provider each would load here)");
  out.push(
    r.models.length === 0
      ? "  none"
      : table([
          ["model", "provider", "variant", "precision", "cpu ms", "problem"],
          ...r.models.map((m) => [m.id, m.provider, m.variant, m.precision, m.cpu_ms, m.problem]),
        ]),
  );
  return out.join("\n") + "\n";
}

export const doctorCommand: CliCommand = {
  name: "doctor",
  synopsis: "doctor [--config FILE] [--json]",
  summary: "what this device can run: providers tried for real, GPU, ffmpeg, each model's variant and provider",
  help: `Usage: cityedge doctor [--config FILE] [--json]

Checks what this device can run and prints a table (--json: one JSON document for scripts):
  - the device: Jetson model (/proc/device-tree/model) and L4T release (/etc/nv_tegra_release),
    GPUs with their compute capability (nvidia-smi, the driver's /proc files, the device tree);
  - the onnxruntime binding: its file, version, the providers compiled in, and whether it carries
    our options patch (without it TensorRT and CUDA get only the device id: docs/gpu.md);
  - each provider (cpu, cuda, tensorrt) tried for real on a one-node model: onnxruntime's provider
    library, the system libraries (CUDA, cuDNN, TensorRT versions), whether it ran and how long it
    took, and whether its options are honoured;
  - ffmpeg: path, version, hardware acceleration methods and hardware decoders;
  - for each model of --config (default: the shipped models with providers tensorrt, cuda, cpu),
    the variant and provider it would load here.

Exit codes: 0 the report was made, 78 the config is invalid, 64 bad arguments.`,
  async run(args) {
    const unknown = args.filter(
      (a, i) => a.startsWith("-") && a !== "--json" && a !== "--config" && !a.startsWith("--config=") && args[i - 1] !== "--config",
    );
    if (unknown.length > 0) return usageError(doctorCommand, `unknown option ${unknown[0]}`);
    const config = flag(args, "--config");
    if (args.includes("--config") && config === undefined) return usageError(doctorCommand, "--config needs a FILE");
    let report: DoctorReport;
    try {
      report = await doctor(config);
    } catch (err) {
      if (err instanceof ConfigError) {
        printProblems(err);
        return EXIT_CONFIG;
      }
      throw err;
    }
    process.stdout.write(args.includes("--json") ? JSON.stringify(report, null, 2) + "\n" : formatReport(report));
    return 0;
  },
};
