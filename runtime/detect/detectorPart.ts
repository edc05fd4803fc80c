import type { Frame } from "../../drivers/camera/frame.js";
import { createSession, type ModelSession, type ProviderName, type SessionOptions } from "../inference/session.js";
import type { VariantName } from "../inference/manifest.js";
import { loadDetectionManifest, type DetectionManifest } from "./detectionManifest.js";
import { TensorBuffer } from "../inference/tensorBuffer.js";
import type { GpuSettings } from "../inference/providerOptions.js";
import { warmUp, type WarmupReport } from "../inference/warmup.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { DaemonBus } from "../events/events.js";
import type { Part, PartHealth, PartState } from "../part.js";
import { loadWithFallback, openDetectionSession, type ModelStore, type ModelVersion } from "../modelUpdate/index.js";
import { CameraDetection, type CameraDetectionStats, type DetectorCamera } from "./cameraDetection.js";
import { roleTensors } from "./decoders/index.js";
import { StallWatchdog } from "./stallWatchdog.js";
import type { ObjectOut } from "./types.js";

export type { DetectorCamera } from "./cameraDetection.js";

export interface DetectorOptions {
  modelId: string;
  manifestFile: string;
  providers: readonly ProviderName[];
  /** CPU threads of the model in total, split between its CPU instances. */
  threads: number;
  /**
   * Sessions running frames of different cameras side by side (config `models[].instances`).
   * "auto": on the CPU provider one per thread, at most one per camera; on TensorRT/CUDA one.
   */
  instances: number | "auto";
  variant: VariantName | "auto";
  warmupRuns: number;
  maxBatch: number;
  /** TensorRT and CUDA settings (config `gpu_device`, `tensorrt:`, `cuda:`). */
  gpu?: GpuSettings;
  /** Where inference runs (config `models[].inference_thread`): a worker thread keeps the event loop free during a run. */
  thread: "main" | "worker";
  /** Cameras built into the detector at start. Cameras may also join later, one unit each ({@link DetectorPart.attach}). */
  cameras: readonly DetectorCamera[];
  /**
   * How many cameras the instances and the batch are planned for, when they join through
   * attach() rather than `cameras` (default: the number of `cameras`).
   */
  plannedCameras?: number;
  /** Where the cameras' detections and counts are emitted. */
  bus: DaemonBus;
  log: Logger;
  metrics?: Metrics;
  /** Called after each frame is handled, for benches and tests. */
  onFrame?: (frame: Frame, objects: ObjectOut[], inferenceMs: number) => void;
  /** Called for each frame the camera's motion gate let go without inference. */
  onSkipped?: (frame: Frame) => void;
  /** Replaces createSession (tests that must pretend a provider exists). */
  create?: SessionOptions["create"];
  /** Stand-ins for what the session setup reads from the machine (tests of the GPU options). */
  probes?: Pick<SessionOptions, "binding" | "gpuInfo" | "inputShape">;
  /** Updated model files: the current one is loaded, falling back to the previous and the shipped one. */
  modelStore?: ModelStore;
  /** A run taking longer than this is stuck: its worker is ended and the session reopened. Default 60 s. */
  stallMs?: number;
}

const ABANDONED = Symbol("abandoned");
const round1 = (v: number) => Math.round(v * 10) / 10;
const IDLE = "waiting for frames";

type CameraState = CameraDetection;

/** One session with its own input buffer and loop; a model has one lane per instance. */
interface Lane {
  index: number;
  model: ModelSession;
  buffer: TensorBuffer;
  stage: string;
  stageMs: number;
  inFlight?: Promise<unknown>;
  abandon?: () => void;
  watchdog?: StallWatchdog;
  loop?: Promise<void>;
  runs: number;
  inferMsSum: number;
}

/**
 * How many sessions a model runs and how many intra-op threads each gets. On the CPU provider,
 * two 1-thread sessions working on different frames beat one 2-thread session by far on small
 * models (no per-operator hand-over between threads); a camera's frames still go one at a time.
 */
export function planInstances(requested: number | "auto", threads: number, cameras: number): { instances: number; threadsPerInstance: number } {
  const instances = requested === "auto" ? Math.max(1, Math.min(threads, cameras)) : requested;
  return { instances, threadsPerInstance: Math.max(1, Math.floor(threads / instances)) };
}

/**
 * What a model's sessions are opened with that depends on how many cameras use it: the CPU
 * instances, and the largest batch TensorRT builds its profile for (null when the chain has no
 * TensorRT, which is the only provider that fixes it at open). Cameras added or removed reopen the
 * sessions only when this changes.
 */
export function sessionPlan(
  model: { instances: number | "auto"; threads: number; max_batch: number; providers: readonly string[] },
  cameras: number,
): { instances: number; tensorrt_batch: number | null } {
  return {
    instances: planInstances(model.instances, model.threads, cameras).instances,
    tensorrt_batch: model.providers.includes("tensorrt") ? largestBatch(model.max_batch, cameras) : null,
  };
}

/** The largest batch a lane runs: one frame per camera, at most max_batch. */
const largestBatch = (maxBatch: number, cameras: number): number => Math.max(1, Math.min(maxBatch, cameras));

/** A model's detector in health: its sessions (provider, variant, version, warm-up), its runs and errors, and its cameras. */
export type DetectorHealth = PartHealth & {
  model: string;
  provider: string | null;
  variant: string | null;
  /** The update_model version running (its sha256), or "shipped". */
  model_version: string;
  skipped_providers: readonly { provider: ProviderName; reason: string }[];
  /** "honoured" when the binding took the provider options, else why not. */
  provider_options: string | null;
  precision: "int8" | "fp16" | "fp32" | null;
  warmup: {
    open_ms: number;
    engine: "cached" | "built" | null;
    total_ms: number;
    batches: { batch: number; first_ms: number; last_ms: number }[];
  } | null;
  instances: number;
  threads_per_instance: number | null;
  batch: number;
  /** Successful runs, and frames that failed. */
  runs: number;
  inference_ms_avg: number | null;
  errors: number;
  /** What the busiest session is doing, and since when. */
  stage: string;
  stage_age_ms: number;
  lanes?: { stage: string; stage_age_ms: number; runs: number }[];
  session_restarts: number;
  cameras: Record<string, CameraDetectionStats>;
};

/**
 * One model and the cameras that use it: loads the manifest, creates its sessions (provider
 * chain, SHA-256, warm-up) — one, or several side by side on the CPU provider — then each
 * session's lane takes the latest frame of the cameras round-robin at their rate, several in one
 * run when the model's batch dimension is dynamic, and hands each frame's output to its camera's
 * pipeline. Nothing queues: a camera's slot holds one frame, and a camera is in one lane at a time.
 */
export class DetectorPart implements Part {
  readonly name: string;
  readonly kind = "detector";
  readonly #o: DetectorOptions;
  readonly #log: Logger;
  #lanes: Lane[] = [];
  #manifest: DetectionManifest | undefined;
  #cams: CameraState[] = [];
  /** Units of the `cameras` option, made at start. */
  #own: CameraState[] = [];
  /** Units that joined through attach(); they stay across a restart of the detector. */
  readonly #attached = new Set<CameraState>();
  #rr = 0;
  #running = false;
  #wakers = new Set<() => void>();
  #state: PartState = "stopped";
  #error: string | undefined;
  #errors = 0;
  #batch = 1;
  #threadsPerInstance: number;
  #version: ModelVersion | null = null;
  #restarts = 0;
  #warmup: WarmupReport | undefined;

  constructor(options: DetectorOptions) {
    this.#o = options;
    this.name = `detector:${options.modelId}`;
    this.#log = options.log;
    this.#threadsPerInstance = options.threads;
  }

  /** The first instance's session (all instances run the same file on the same provider). */
  get session(): ModelSession | undefined {
    return this.#lanes[0]?.model;
  }

  /** Sessions running side by side. */
  get instances(): number {
    return this.#lanes.length;
  }

  get modelId(): string {
    return this.#o.modelId;
  }

  /** The model it runs (health groups detectors by it). */
  get id(): string {
    return this.#o.modelId;
  }

  /**
   * A camera joins: its frames are taken from the next round on (at once when the detector
   * runs, else once it has started). The unit's owner starts and closes its counts.
   */
  attach(unit: CameraDetection): void {
    this.#attached.add(unit);
    if (this.#running && !this.#cams.includes(unit)) {
      this.#cams.push(unit);
      this.#wakeAll();
    }
  }

  /** A camera leaves; resolves once no lane holds one of its frames any more. */
  async detach(unit: CameraDetection): Promise<void> {
    this.#attached.delete(unit);
    const i = this.#cams.indexOf(unit);
    if (i >= 0) {
      this.#cams.splice(i, 1);
      this.#rr = 0;
    }
    await unit.idle();
  }

  async start(): Promise<void> {
    this.#state = "starting";
    try {
      await this.#open();
    } catch (err) {
      this.#state = "failed";
      this.#error = (err as Error).message;
      for (const lane of this.#lanes) await lane.model.release().catch(() => undefined);
      this.#lanes = [];
      throw err;
    }
    this.#running = true;
    this.#state = "running";
    const stallMs = this.#o.stallMs ?? 60_000;
    for (const lane of this.#lanes) {
      lane.loop = this.#run(lane);
      lane.watchdog = new StallWatchdog({
        stallMs,
        checkMs: Math.min(5000, Math.max(50, stallMs / 4)),
        stage: () => ({ stage: lane.stage, sinceMs: lane.stageMs }),
        idle: new Set([IDLE]),
        onStall: (stage, ageMs) => void this.#restartStuck(lane, stage, ageMs),
      });
      lane.watchdog.start();
    }
  }

  /**
   * The watchdog's remedy: a lane whose stage stopped progressing (a hung run in the worker
   * thread) gets a fresh session; the stuck one is ended, its run rejects, and the lane carries on.
   */
  async #restartStuck(lane: Lane, stage: string, ageMs: number): Promise<void> {
    const manifest = this.#manifest;
    const stuck = lane.model;
    if (!manifest || !this.#running) return;
    this.#state = "degraded";
    this.#error = `${stage} made no progress for ${ageMs} ms; restarting the model session`;
    this.#log.error({ model: this.#o.modelId, instance: lane.index, stage, stage_age_ms: ageMs }, `detector ${this.#o.modelId}: ${this.#error}`);
    try {
      const next = await openDetectionSession(manifest, this.#version, this.#sessionOptions(lane.index === 0 ? this.#o.providers : [stuck.provider]));
      await this.#warmNew(next);
      lane.model = next;
      this.#restarts++;
      lane.abandon?.();
      await stuck.terminate();
      this.#log.warn({ model: this.#o.modelId, instance: lane.index, provider: next.provider, restarts: this.#restarts }, "model session restarted");
    } catch (err) {
      this.#log.error({ err, model: this.#o.modelId }, "model session could not be restarted; the next stall retries");
    }
  }

  async #open(): Promise<void> {
    const o = this.#o;
    const manifest = loadDetectionManifest(o.manifestFile);
    this.#manifest = manifest;
    // Pipelines first: a bad label in a camera's config fails here, before minutes of TensorRT building.
    const now = Date.now();
    this.#own = o.cameras.map((camera) => new CameraDetection({ camera, modelId: o.modelId, manifest, bus: o.bus, log: this.#log }, now));
    this.#cams = [...this.#own, ...this.#attached];
    const cameraCount = o.plannedCameras ?? o.cameras.length;
    const plan = planInstances(o.instances, o.threads, cameraCount);
    this.#threadsPerInstance = plan.threadsPerInstance;
    // The first session walks the provider chain; the others open on the provider it found.
    const store = o.modelStore;
    let first: ModelSession;
    if (store) {
      const opened = await loadWithFallback(o.modelId, store, (v) => openDetectionSession(manifest, v, this.#sessionOptions(o.providers)), this.#log);
      first = opened.loaded;
      this.#version = opened.version;
    } else {
      first = await createSession(manifest, this.#sessionOptions(o.providers));
    }
    const models = [first];
    // A GPU session works its own stream; more of them only cost memory unless asked for.
    const count = first.provider === "cpu" || o.instances !== "auto" ? plan.instances : 1;
    try {
      for (let i = 1; i < count; i++) models.push(await openDetectionSession(manifest, this.#version, this.#sessionOptions([first.provider])));
    } catch (err) {
      for (const m of models) await m.release().catch(() => undefined);
      throw err;
    }
    const dynamic = first.dynamicBatch(manifest.input.name);
    this.#batch = dynamic ? Math.max(1, Math.min(o.maxBatch, Math.ceil(cameraCount / models.length))) : 1;
    this.#lanes = models.map((model, index) => {
      const buffer = new TensorBuffer(manifest.input, this.#batch, { shared: o.thread === "worker" });
      buffer.data.fill(manifest.input.letterbox_pad);
      return { index, model, buffer, stage: IDLE, stageMs: Date.now(), runs: 0, inferMsSum: 0 };
    });
    // Every batch size a lane will run, before any watchdog is armed (start() arms them): a
    // TensorRT engine build takes minutes on a Jetson and is not a stall.
    const warm = await Promise.all(this.#lanes.map((l) => warmUp(l.model, manifest.input.name, l.buffer, o.warmupRuns, this.#batch)));
    this.#warmup = warm[0];
    this.#log.info(
      {
        model: o.modelId,
        provider: first.provider,
        variant: first.variant,
        instances: this.#lanes.length,
        threads_per_instance: first.provider === "cpu" ? this.#threadsPerInstance : undefined,
        batch: this.#batch,
        open_ms: Math.round(first.openMs),
        engine: warm[0]?.engine ?? null,
        warmup_ms: Math.round(Math.max(0, ...warm.map((w) => w.totalMs))),
        warmup_batches: warm[0]?.batches.map((b) => ({ batch: b.batch, first_ms: round1(b.firstMs), last_ms: round1(b.lastMs) })),
        cameras: this.#cams.map((c) => c.cam.id),
      },
      "detector ready",
    );
    for (const c of this.#own) c.startCounts();
  }

  /**
   * Warms a session that is not in a lane yet (a restart's or an update's), at every batch size,
   * on its own buffer: the lanes keep running meanwhile, and no watchdog watches a build.
   */
  async #warmNew(model: ModelSession): Promise<void> {
    const manifest = this.#manifest!;
    const buffer = new TensorBuffer(manifest.input, this.#batch);
    buffer.data.fill(manifest.input.letterbox_pad);
    this.#warmup = await warmUp(model, manifest.input.name, buffer, Math.max(1, this.#o.warmupRuns), this.#batch);
    this.#log.info(
      { model: this.#o.modelId, provider: model.provider, engine: this.#warmup.engine, warmup_ms: Math.round(this.#warmup.totalMs) },
      "new model session warmed up",
    );
  }

  #sessionOptions(providers: readonly ProviderName[]): SessionOptions {
    const o = this.#o;
    return {
      providers,
      threads: this.#threadsPerInstance,
      variant: o.variant,
      thread: o.thread,
      log: this.#log,
      ...(o.gpu ? { gpu: o.gpu } : {}),
      // One TensorRT profile up to the largest batch a lane can run (one lane on a GPU).
      ...(this.#manifest ? { batch: { input: this.#manifest.input.name, max: largestBatch(o.maxBatch, o.plannedCameras ?? o.cameras.length) } } : {}),
      ...(o.create ? { create: o.create } : {}),
      ...o.probes,
    };
  }

  /**
   * update_model's hook: opens `version` (null: the shipped file) in new sessions and
   * check-runs them, then swaps them in between two runs and releases the old ones. Throws, with
   * the old sessions still running, when a new one fails to load or run.
   */
  async swapModel(version: ModelVersion | null): Promise<{ provider: string }> {
    const manifest = this.#manifest;
    const lanes = this.#lanes;
    if (!manifest || lanes.length === 0 || !this.#running) throw new Error(`detector ${this.#o.modelId} is not running`);
    const next: ModelSession[] = [];
    try {
      next.push(await openDetectionSession(manifest, version, this.#sessionOptions(this.#o.providers)));
      for (let i = 1; i < lanes.length; i++) next.push(await openDetectionSession(manifest, version, this.#sessionOptions([next[0]!.provider])));
      if (this.#batch > 1 && !next[0]!.dynamicBatch(manifest.input.name)) {
        throw new Error(`model ${this.#o.modelId}: the new file has a fixed batch size; ${this.#batch} cameras share a run`);
      }
      for (const m of next) await this.#warmNew(m);
    } catch (err) {
      for (const m of next) await m.release().catch(() => undefined);
      throw err;
    }
    const old = lanes.map((lane, i) => {
      const prev = lane.model;
      lane.model = next[i]!;
      return { lane, prev };
    });
    this.#version = version;
    // A run already started on an old session finishes before it is released (its outcome is the lane's).
    for (const { lane, prev } of old) {
      await Promise.allSettled([lane.inFlight]);
      await prev.release();
    }
    this.#log.info(
      { model: this.#o.modelId, provider: next[0]!.provider, instances: next.length, version: version?.sha256 ?? "shipped" },
      "model swapped",
    );
    return { provider: next[0]!.provider };
  }

  #setStage(lane: Lane, stage: string): void {
    lane.stage = stage;
    lane.stageMs = Date.now();
  }

  #ready(c: CameraState, now: number): boolean {
    return !c.busy && c.cam.slot.peek() !== undefined && now >= c.nextDue;
  }

  /** Ready cameras not held by another lane, round-robin from the one after the last served, up to the batch size. */
  #pick(now: number): CameraState[] {
    const picked: CameraState[] = [];
    const n = this.#cams.length;
    for (let k = 0; k < n && picked.length < this.#batch; k++) {
      const c = this.#cams[(this.#rr + k) % n]!;
      if (this.#ready(c, now)) picked.push(c);
    }
    if (picked.length > 0) this.#rr = (this.#cams.indexOf(picked[picked.length - 1]!) + 1) % n;
    for (const c of picked) c.busy = true;
    return picked;
  }

  #wakeAll(): void {
    const w = [...this.#wakers];
    this.#wakers.clear();
    for (const wake of w) wake();
  }

  /** Until a free camera has a frame that is due, a camera is released by another lane, or stop. */
  async #waitForWork(): Promise<void> {
    const now = Date.now();
    const free = this.#cams.filter((c) => !c.busy);
    const waiting = free.filter((c) => c.cam.slot.peek() !== undefined);
    const due = waiting.length > 0 ? Math.min(...waiting.map((c) => c.nextDue)) - now : Infinity;
    let timer: NodeJS.Timeout | undefined;
    let wake: (() => void) | undefined;
    await new Promise<void>((resolve) => {
      wake = resolve;
      this.#wakers.add(resolve);
      if (Number.isFinite(due)) timer = setTimeout(resolve, Math.max(1, due));
      for (const c of free) if (c.cam.slot.peek() === undefined) void c.cam.slot.next().then(resolve);
    });
    clearTimeout(timer);
    if (wake) this.#wakers.delete(wake);
  }

  /**
   * Takes the picked cameras' frames and asks each camera's motion gate: a frame it skips is
   * released at once (its camera is free again) and never reaches the tracker.
   */
  #gate(batch: readonly CameraState[], now: number): [CameraState, Frame][] {
    const kept: [CameraState, Frame][] = [];
    for (const c of batch) {
      const f = c.cam.slot.take()!;
      if (c.cam.paced !== false) c.nextDue = Math.max(c.nextDue + 1000 / c.cam.fps, now + 900 / c.cam.fps);
      if (c.gate && !c.gate.decide(f, f.pts_ms ?? f.arrival_ms).infer) {
        c.pipeline.skip(f);
        this.#o.onSkipped?.(f);
        c.cam.slot.release(f);
        c.busy = false;
        continue;
      }
      kept.push([c, f]);
    }
    return kept;
  }

  async #run(lane: Lane): Promise<void> {
    const manifest = this.#manifest!;
    const inputName = manifest.input.name;
    while (this.#running) {
      const now = Date.now();
      const batch = this.#pick(now);
      if (batch.length === 0) {
        this.#setStage(lane, IDLE);
        await this.#waitForWork();
        continue;
      }
      const frames: Frame[] = [];
      const buffer = lane.buffer;
      // Frames the motion gate lets through; the others go back to their cameras untouched.
      const gated = this.#gate(batch, now);
      batch.length = 0;
      for (const [c, f] of gated) {
        batch.push(c);
        frames.push(f);
      }
      if (batch.length === 0) {
        if (this.#lanes.length > 1) this.#wakeAll();
        continue;
      }
      try {
        // Pixels to tensor and the run, as one stage: a worker session converts the frames itself.
        this.#setStage(lane, "inference");
        const t0 = performance.now();
        // The session is read per run: update_model may swap it between two runs.
        const model = lane.model;
        lane.inFlight = model.runFrames(inputName, buffer, frames);
        // The watchdog can abandon a run that never returns (resolving, so nothing is left unhandled).
        const abandoned = new Promise<typeof ABANDONED>((resolve) => (lane.abandon = () => resolve(ABANDONED)));
        const settled = await Promise.race([lane.inFlight, abandoned]);
        lane.abandon = undefined;
        if (settled === ABANDONED) throw new Error("run abandoned by the watchdog");
        const result = settled as Awaited<ReturnType<ModelSession["run"]>>;
        const inferMs = performance.now() - t0;
        lane.runs++;
        lane.inferMsSum += inferMs;
        this.#o.metrics?.histogram("cityedge_inference_seconds").observe(inferMs / 1000, { model: this.#o.modelId, provider: model.provider });
        this.#setStage(lane, "postprocess");
        const tensors = roleTensors(manifest.output, result);
        batch.forEach((c, b) => {
          const f = frames[b]!;
          const objects = c.pipeline.process(f, tensors, b, inferMs / frames.length);
          c.frames++;
          c.fpsWindow.push(Date.now());
          if (c.fpsWindow.length > 30) c.fpsWindow.shift();
          this.#o.metrics?.counter("cityedge_detect_frames_total").inc({ camera: c.cam.id });
          this.#o.onFrame?.(f, objects, inferMs);
          c.observe(f, objects);
        });
        if (this.#state === "degraded") this.#state = "running";
      } catch (err) {
        this.#errors++;
        this.#state = "degraded";
        this.#error = (err as Error).message;
        // One bad frame must not flood the log at frame rate.
        if (this.#errors <= 3 || this.#errors % 100 === 0)
          this.#log.error(
            { err, model: this.#o.modelId, instance: lane.index, errors: this.#errors, stage: lane.stage, cameras: batch.map((c) => c.cam.id) },
            "detection failed for a frame",
          );
        // Yield so a persistent failure cannot starve the event loop.
        await new Promise((r) => setImmediate(r));
      } finally {
        // Done with the pixels: the camera may reuse the buffers (the snapshot store copied what it keeps).
        frames.forEach((f, b) => batch[b]!.cam.slot.release(f));
        for (const c of batch) c.busy = false;
        // Another lane may be waiting for exactly these cameras.
        if (this.#lanes.length > 1) this.#wakeAll();
      }
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const lane of this.#lanes) lane.watchdog?.stop();
    this.#wakeAll();
    await Promise.all(this.#lanes.map((l) => l.loop ?? Promise.resolve()));
    for (const c of this.#own) await c.close(this.#lanes.length > 0);
    for (const lane of this.#lanes) await lane.model.release();
    this.#lanes = [];
    this.#state = "stopped";
  }

  health(): DetectorHealth {
    const cameras: Record<string, CameraDetectionStats> = {};
    for (const c of this.#cams) cameras[c.cam.id] = c.health();
    const lanes = this.#lanes;
    const runs = lanes.reduce((a, l) => a + l.runs, 0);
    const inferMsSum = lanes.reduce((a, l) => a + l.inferMsSum, 0);
    // The busiest lane's stage: the one a stuck run would show in.
    const lead = lanes.find((l) => l.stage !== IDLE) ?? lanes[0];
    const model = lanes[0]?.model;
    return {
      state: this.#state,
      ...(this.#error !== undefined ? { error: this.#error } : {}),
      model: this.#o.modelId,
      provider: model?.provider ?? null,
      variant: model?.variant ?? null,
      model_version: this.#version?.sha256 ?? "shipped",
      skipped_providers: model?.skipped ?? [],
      provider_options: model ? (model.setup.ignored ?? "honoured") : null,
      precision: model?.setup.precision ? (model.setup.precision.int8 ? "int8" : model.setup.precision.fp16 ? "fp16" : "fp32") : null,
      warmup: this.#warmup
        ? {
            open_ms: Math.round(this.#warmup.openMs),
            engine: this.#warmup.engine,
            total_ms: Math.round(this.#warmup.totalMs),
            batches: this.#warmup.batches.map((b) => ({ batch: b.batch, first_ms: round1(b.firstMs), last_ms: round1(b.lastMs) })),
          }
        : null,
      instances: lanes.length,
      threads_per_instance: model?.provider === "cpu" ? this.#threadsPerInstance : null,
      batch: this.#batch,
      runs,
      inference_ms_avg: runs > 0 ? Math.round((inferMsSum / runs) * 10) / 10 : null,
      errors: this.#errors,
      stage: lead?.stage ?? IDLE,
      stage_age_ms: Date.now() - (lead?.stageMs ?? Date.now()),
      ...(lanes.length > 1 ? { lanes: lanes.map((l) => ({ stage: l.stage, stage_age_ms: Date.now() - l.stageMs, runs: l.runs })) } : {}),
      session_restarts: this.#restarts,
      cameras,
    };
  }
}
