import { mkdirSync } from "node:fs";
import * as ort from "onnxruntime-node";
import type { Logger } from "../log/logger.js";
import { verifySha256, type ModelManifest, type VariantName } from "./manifest.js";
import type { TensorBuffer, PixelSource } from "./tensorBuffer.js";
import { createInWorker, WorkerSession } from "./workerSession.js";

export type ProviderName = "tensorrt" | "cuda" | "cpu";

export interface TensorRtOptions {
  fp16: boolean;
  int8: boolean;
  /** Engine and timing cache directory; created when missing. */
  cacheDir?: string;
}

export interface SessionOptions {
  /** Providers to try, in order; the first that creates a session wins. */
  providers: readonly ProviderName[];
  /** Intra-op threads of the CPU provider. */
  threads: number;
  /** A variant of the manifest, or "auto" to pick per provider (TensorRT/CUDA: fp16 first; CPU: int8 first). */
  variant: VariantName | "auto";
  tensorrt?: TensorRtOptions;
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
}

// onnxruntime's own log goes to stderr as coloured text, past pino (not JSON, not scrubbed), and
// a missing GPU provider prints errors there before it throws. Every failure it reports also
// reaches us as an exception, which is logged with context; so only fatal lines stay on.
// This is process-wide and takes effect with the first session created.
ort.env.logLevel = "fatal";

/**
 * Variant preference per provider when the config says "auto". CPU: our QDQ int8 detector (fused
 * Conv+BN+ReLU, uint8 activations) runs 2.5-3.4x faster than fp32 at the same mAP. TensorRT: fp16
 * first, because TensorRT's QDQ import needs signed int8 activations, which our int8 files do not
 * use; an int8 file is the last resort there.
 */
const AUTO_ORDER: Record<ProviderName, VariantName[]> = {
  tensorrt: ["fp16", "fp32", "int8"],
  cuda: ["fp16", "fp32"],
  cpu: ["int8", "fp32", "fp16"],
};

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

  constructor(
    manifest: ModelManifest,
    session: ort.InferenceSession,
    provider: ProviderName,
    variant: VariantName,
    file: string,
    skipped: { provider: ProviderName; reason: string }[],
  ) {
    this.manifest = manifest;
    this.session = session;
    this.provider = provider;
    this.variant = variant;
    this.file = file;
    this.skipped = skipped;
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

function providerConfig(p: ProviderName): ort.InferenceSession.ExecutionProviderConfig {
  return p === "cpu" ? "cpu" : { name: p, deviceId: 0 };
}

/**
 * onnxruntime-node hands TensorRT only a device id; the TensorRT provider reads the rest of its
 * options from these environment variables when it is created.
 */
export function applyTensorRtEnv(opts: TensorRtOptions, env: NodeJS.ProcessEnv = process.env): void {
  env.ORT_TENSORRT_FP16_ENABLE = opts.fp16 ? "1" : "0";
  env.ORT_TENSORRT_INT8_ENABLE = opts.int8 ? "1" : "0";
  if (opts.cacheDir !== undefined) {
    mkdirSync(opts.cacheDir, { recursive: true });
    env.ORT_TENSORRT_ENGINE_CACHE_ENABLE = "1";
    env.ORT_TENSORRT_CACHE_PATH = opts.cacheDir;
    env.ORT_TENSORRT_TIMING_CACHE_ENABLE = "1";
    env.ORT_TENSORRT_TIMING_CACHE_PATH = opts.cacheDir;
  }
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
  const available = Object.keys(manifest.files) as VariantName[];
  const verified = new Map<VariantName, string>();
  const skipped: { provider: ProviderName; reason: string }[] = [];
  for (let i = 0; i < opts.providers.length; i++) {
    const provider = opts.providers[i]!;
    const next = opts.providers[i + 1];
    const variant =
      opts.variant === "auto" ? AUTO_ORDER[provider].find((v) => available.includes(v)) : available.includes(opts.variant) ? opts.variant : undefined;
    let reason: string;
    if (variant === undefined) {
      reason = `the manifest has no ${opts.variant === "auto" ? AUTO_ORDER[provider].join("/") : opts.variant} variant (has: ${available.join(", ")})`;
    } else {
      let file = verified.get(variant);
      if (file === undefined) {
        // A corrupt file is not a provider problem: it fails the model at once.
        file = await verifySha256(manifest, variant);
        verified.set(variant, file);
      }
      if (provider === "tensorrt" && opts.tensorrt) applyTensorRtEnv(opts.tensorrt);
      try {
        const session = await create(file, {
          executionProviders: [providerConfig(provider)],
          intraOpNumThreads: opts.threads,
          interOpNumThreads: 1,
          executionMode: "sequential",
          graphOptimizationLevel: "all",
          logSeverityLevel: 3,
          extra: { session: { intra_op: { allow_spinning: opts.allowSpinning === true ? "1" : "0" } } },
        });
        opts.log.info(
          {
            model: manifest.id,
            provider,
            variant,
            file,
            threads: opts.threads,
            thread: opts.thread ?? "main",
            skipped: skipped.map((s) => s.provider),
          },
          `model ${manifest.id}: using provider ${provider}`,
        );
        return new ModelSession(manifest, session, provider, variant, file, skipped);
      } catch (err) {
        reason = firstLine(err);
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
