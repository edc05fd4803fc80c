import * as ort from "onnxruntime-node";
import type { Logger } from "../log/logger.js";
import { bindingDir, bindingInfo, optionsIgnored, type BindingInfo } from "./binding.js";
import { discardEngineDir, engineBuilt, prepareEngineDir, type EngineDir } from "./engineCache.js";
import { gpuInfo, type GpuInfo } from "./gpuInfo.js";
import { verifySha256, type ModelManifest, type VariantName } from "./manifest.js";
import {
  cudaOptions,
  DEFAULT_GPU_SETTINGS,
  profileShapes,
  providerEntry,
  tensorRtAutoOrder,
  tensorRtOptions,
  tensorRtPrecision,
  type GpuSettings,
} from "./providerOptions.js";
import type { TensorBuffer, PixelSource } from "./tensorBuffer.js";
import { createInWorker, WorkerSession } from "./workerSession.js";

export type ProviderName = "tensorrt" | "cuda" | "cpu";

export interface SessionOptions {
  /** Providers to try, in order; the first that creates a session wins. */
  providers: readonly ProviderName[];
  /** Intra-op threads of the CPU provider. */
  threads: number;
  /**
   * A variant of the manifest, or "auto" to pick per provider: TensorRT the symmetric int8 (QDQ)
   * file, CUDA fp16, the CPU the variant with the lowest measured `cpu_ms`.
   */
  variant: VariantName | "auto";
  /** TensorRT and CUDA settings; defaults when absent. */
  gpu?: GpuSettings;
  /**
   * The input whose first dimension is the batch, and the largest batch that will run: a
   * dynamic-batch model gets one TensorRT profile from 1 to it, so no batch size rebuilds.
   */
  batch?: { input: string; max: number };
  /**
   * Let idle intra-op threads spin between runs (onnxruntime's default). Off by default: on a
   * 2-core Jetson-class CPU the spinning threads take the cores that ffmpeg, the outbox and MQTT
   * need, and measured throughput drops.
   */
  allowSpinning?: boolean;
  /**
   * "worker" creates the session in its own worker thread, so a run does not block the event
   * loop (see WorkerSession); "main" (the default) runs it on the calling thread.
   */
  thread?: "main" | "worker";
  log: Logger;
  /**
   * Creates one session on exactly one provider. Injected by tests that must pretend a GPU
   * provider works; the default is onnxruntime-node's.
   */
  create?: (file: string, options: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>;
  /** What the onnxruntime binding honours (tests pass a patched or stock one); default: this process's. */
  binding?: BindingInfo;
  /** TensorRT version and GPU, for the engine cache key; default: probed once. */
  gpuInfo?: GpuInfo;
  /** Dimensions of an input as the file declares them; default: read through a CPU session. */
  inputShape?: (file: string, input: string) => Promise<readonly (number | string)[]>;
}

// onnxruntime's own log goes to stderr as coloured text, past pino (not JSON, not scrubbed), and
// a missing GPU provider prints errors there before it throws. Every failure it reports also
// reaches us as an exception, which is logged with context; so only fatal lines stay on.
// This is process-wide and takes effect with the first session created.
ort.env.logLevel = "fatal";

/** CPU preference when no variant states its measured speed: our CPU-tuned int8 QDQ first. */
const CPU_ORDER: VariantName[] = ["int8", "fp32", "fp16", "int8_sym"];

/** The CPU's "auto" order: the variants by measured `cpu_ms` (fastest first), then the rest in CPU_ORDER. */
export function cpuAutoOrder(manifest: ModelManifest): VariantName[] {
  const timed = CPU_ORDER.filter((v) => manifest.variants[v]?.cpu_ms !== undefined).sort(
    (a, b) => manifest.variants[a]!.cpu_ms! - manifest.variants[b]!.cpu_ms!,
  );
  return [...timed, ...CPU_ORDER.filter((v) => !timed.includes(v))];
}

/** How the session's provider was set up: what the GPU providers got, and whether the binding passed it on. */
export interface ProviderSetup {
  /** The entry handed to the binding ("cpu" for the CPU provider). */
  entry: ort.InferenceSession.ExecutionProviderConfig;
  /** null when every option reached onnxruntime; else why not. */
  ignored: string | null;
  /** TensorRT: the keyed engine folder, and whether it held an engine before this session. */
  engine?: EngineDir;
  precision?: { fp16: boolean; int8: boolean };
}

/**
 * One onnxruntime session on the provider that worked, shared by every camera that uses the
 * model. `run()` feeds the input tensor and returns the named output.
 */
export class ModelSession {
  readonly manifest: ModelManifest;
  readonly session: ort.InferenceSession;
  readonly provider: ProviderName;
  readonly variant: VariantName;
  readonly file: string;
  /** Providers that were tried and failed before `provider`, with the reason. */
  readonly skipped: readonly { provider: ProviderName; reason: string }[];
  readonly setup: ProviderSetup;
  /** Milliseconds creating the session took (TensorRT builds or loads its engines here when shapes are known). */
  readonly openMs: number;

  constructor(
    manifest: ModelManifest,
    session: ort.InferenceSession,
    provider: ProviderName,
    variant: VariantName,
    file: string,
    skipped: { provider: ProviderName; reason: string }[],
    setup: ProviderSetup = { entry: "cpu", ignored: null },
    openMs = 0,
  ) {
    this.manifest = manifest;
    this.session = session;
    this.provider = provider;
    this.variant = variant;
    this.file = file;
    this.skipped = skipped;
    this.setup = setup;
    this.openMs = openMs;
  }

  /** The declared shape of an input; a string or negative entry is a dynamic dimension. */
  inputShape(name: string): readonly (number | string)[] {
    const meta = this.session.inputMetadata.find((m) => m.name === name);
    if (!meta) throw new Error(`model ${this.manifest.id}: no input "${name}" (inputs: ${this.session.inputNames.join(", ")})`);
    return meta.isTensor ? meta.shape : [];
  }

  /** True when the first dimension of the input is dynamic, so several frames can share a run. */
  dynamicBatch(name: string): boolean {
    const first = this.inputShape(name)[0];
    return typeof first === "string" || (typeof first === "number" && first < 0);
  }

  async run(feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
    return this.session.run(feeds);
  }

  /**
   * Runs the model on camera frames (at most `buffer.maxBatch`). On this thread they are
   * converted into `buffer`; a session in a worker converts them there, into its own tensor.
   */
  async runFrames(input: string, buffer: TensorBuffer, frames: readonly PixelSource[]): Promise<ort.InferenceSession.ReturnType> {
    if (this.session instanceof WorkerSession) return this.session.runFrames(input, buffer.spec, buffer.maxBatch, frames);
    frames.forEach((f, slot) => buffer.fill(slot, f));
    return this.session.run({ [input]: buffer.tensor(frames.length) });
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  /**
   * Ends the session now, even in the middle of a run: a worker session's thread is terminated
   * (the pending run rejects); a session on the main thread cannot be stuck while this runs, and
   * is released.
   */
  async terminate(): Promise<void> {
    const s = this.session as unknown as { terminate?: () => Promise<void> };
    if (typeof s.terminate === "function") await s.terminate();
    else await this.session.release();
  }
}

/** Reads an input's declared dimensions through a CPU session with no optimization (cheap; TensorRT is not involved). */
async function declaredShape(file: string, input: string): Promise<readonly (number | string)[]> {
  const probe = await ort.InferenceSession.create(file, { executionProviders: ["cpu"], graphOptimizationLevel: "disabled", logSeverityLevel: 3 });
  try {
    const meta = probe.inputMetadata.find((m) => m.name === input);
    return meta?.isTensor ? meta.shape : [];
  } finally {
    await probe.release();
  }
}

interface SetupContext {
  manifest: ModelManifest;
  variant: VariantName;
  file: string;
  opts: SessionOptions;
  binding: BindingInfo;
}

/** The binding entry for one provider, with the engine folder keyed and created for TensorRT. Throws a reason to skip it. */
async function setUpProvider(provider: ProviderName, c: SetupContext): Promise<ProviderSetup> {
  if (provider === "cpu") return { entry: "cpu", ignored: null };
  const compiled = c.binding.backends.map((b) => b.name);
  // Known before any folder or probe session: a binding without the provider cannot create it.
  if (compiled.length > 0 && !compiled.includes(provider)) {
    throw new Error(`the onnxruntime binding has no ${provider} provider (compiled in: ${compiled.join(", ")})`);
  }
  const settings = c.opts.gpu ?? DEFAULT_GPU_SETTINGS;
  const ignored = optionsIgnored(c.binding, provider);
  if (provider === "cuda") {
    return { entry: providerEntry("cuda", settings.deviceId, cudaOptions(settings)) as ort.InferenceSession.ExecutionProviderConfig, ignored };
  }
  const precision = tensorRtPrecision(settings.tensorrt.precision, c.variant);
  if (typeof precision === "string") throw new Error(precision);
  let profile: ReturnType<typeof profileShapes> | null = null;
  if (c.opts.batch) {
    const shape = await (c.opts.inputShape ?? declaredShape)(c.file, c.opts.batch.input);
    const first = shape[0];
    const rest = shape.slice(1);
    const dynamicBatch = typeof first === "string" || (typeof first === "number" && first < 0);
    if (dynamicBatch && rest.every((d): d is number => typeof d === "number" && d > 0)) {
      profile = profileShapes({ input: c.opts.batch.input, dims: rest, maxBatch: Math.max(1, c.opts.batch.max) });
    }
  }
  let engine: EngineDir | undefined;
  const t = settings.tensorrt;
  if (t.cacheDir !== undefined && (t.engineCache || t.timingCache)) {
    const hw = c.opts.gpuInfo ?? gpuInfo([bindingDir()]);
    const gpu = hw.gpus[settings.deviceId] ?? hw.gpus[0];
    engine = prepareEngineDir(
      t.cacheDir,
      {
        model: c.manifest.id,
        variant: c.variant,
        sha256: c.manifest.variants[c.variant]!.sha256,
        fp16: precision.fp16,
        int8: precision.int8,
        profile,
        workspaceBytes: t.workspaceMb * 1024 * 1024,
        builderOptimizationLevel: t.builderOptimizationLevel,
        dlaCore: t.dlaCore ?? null,
        cudaGraph: t.cudaGraph,
        tensorrt: hw.tensorrt,
        gpu: `${settings.deviceId}:${gpu ? `${gpu.name} sm ${gpu.computeCapability ?? "?"}` : "unknown"}`,
        onnxruntime: c.binding.version,
      },
      c.opts.log,
    );
  }
  const options = tensorRtOptions({
    settings,
    ...precision,
    profile,
    ...(engine && t.engineCache ? { engineDir: engine.dir } : {}),
    ...(engine && t.timingCache ? { timingDir: engine.timingDir } : {}),
  });
  return {
    entry: providerEntry("tensorrt", settings.deviceId, options) as ort.InferenceSession.ExecutionProviderConfig,
    ignored,
    ...(engine ? { engine } : {}),
    precision,
  };
}

/** The variants a provider tries under "auto", best first. */
function autoOrder(provider: ProviderName, manifest: ModelManifest, gpu: GpuSettings | undefined, binding: BindingInfo): VariantName[] {
  if (provider === "cpu") return cpuAutoOrder(manifest);
  if (provider === "cuda") return ["fp16", "fp32"];
  return tensorRtAutoOrder((gpu ?? DEFAULT_GPU_SETTINGS).tensorrt.precision, optionsIgnored(binding, "tensorrt") === null);
}

/**
 * The variant a provider would load: the requested one, or under "auto" the first of the
 * provider's order that the manifest has. `order` is what was looked for (for the error).
 */
export function pickVariant(
  provider: ProviderName,
  manifest: ModelManifest,
  requested: VariantName | "auto",
  gpu: GpuSettings | undefined,
  binding: BindingInfo,
): { variant: VariantName | undefined; order: VariantName[] } {
  const order = requested === "auto" ? autoOrder(provider, manifest, gpu, binding) : [requested];
  return { variant: order.find((v) => manifest.files[v] !== undefined), order };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.trim();
}

/**
 * Creates the session for a model: checks the variant's SHA-256, then probes the providers one
 * at a time (onnxruntime-node throws when a listed provider is missing instead of falling back),
 * logging `provider X unavailable: <reason>, falling back to Y` for each one skipped.
 * Throws when no provider works, naming each provider's reason.
 */
export async function createSession(manifest: ModelManifest, opts: SessionOptions): Promise<ModelSession> {
  const create = opts.create ?? (opts.thread === "worker" ? createInWorker : (file, o) => ort.InferenceSession.create(file, o));
  const binding = opts.binding ?? bindingInfo();
  const available = Object.keys(manifest.files) as VariantName[];
  const verified = new Map<VariantName, string>();
  const skipped: { provider: ProviderName; reason: string }[] = [];
  for (let i = 0; i < opts.providers.length; i++) {
    const provider = opts.providers[i]!;
    const next = opts.providers[i + 1];
    const { variant, order } = pickVariant(provider, manifest, opts.variant, opts.gpu, binding);
    let reason: string;
    if (variant === undefined) {
      reason = `the manifest has no ${order.join("/")} variant (has: ${available.join(", ")})`;
    } else {
      let file = verified.get(variant);
      if (file === undefined) {
        // A corrupt file is not a provider problem: it fails the model at once.
        file = await verifySha256(manifest, variant);
        verified.set(variant, file);
      }
      let setup: ProviderSetup | undefined;
      try {
        setup = await setUpProvider(provider, { manifest, variant, file, opts, binding });
        const t0 = performance.now();
        const session = await create(file, {
          executionProviders: [setup.entry],
          intraOpNumThreads: opts.threads,
          interOpNumThreads: 1,
          executionMode: "sequential",
          graphOptimizationLevel: "all",
          logSeverityLevel: 3,
          extra: { session: { intra_op: { allow_spinning: opts.allowSpinning === true ? "1" : "0" } } },
        });
        const openMs = performance.now() - t0;
        opts.log.info(
          {
            model: manifest.id,
            provider,
            variant,
            file,
            threads: opts.threads,
            thread: opts.thread ?? "main",
            skipped: skipped.map((s) => s.provider),
            open_ms: Math.round(openMs),
            ...(setup.precision ? { precision: setup.precision } : {}),
            ...(setup.engine ? { engine_dir: setup.engine.dir, engine_cached: setup.engine.cached } : {}),
          },
          `model ${manifest.id}: using provider ${provider}`,
        );
        if (setup.ignored !== null) {
          opts.log.warn(
            { model: manifest.id, provider, binding: binding.file },
            `model ${manifest.id}: provider ${provider} options not honoured: ${setup.ignored}`,
          );
        }
        return new ModelSession(manifest, session, provider, variant, file, skipped, setup, openMs);
      } catch (err) {
        reason = firstLine(err);
        if (setup?.engine && !setup.engine.cached && !engineBuilt(setup.engine.dir)) discardEngineDir(setup.engine);
      }
    }
    skipped.push({ provider, reason });
    opts.log.warn(
      { model: manifest.id, provider, reason, next: next ?? null },
      next !== undefined
        ? `provider ${provider} unavailable: ${reason}, falling back to ${next}`
        : `provider ${provider} unavailable: ${reason}, no provider left`,
    );
  }
  throw new Error(`model ${manifest.id}: no execution provider worked (${skipped.map((s) => `${s.provider}: ${s.reason}`).join("; ")})`);
}
