import type { Frame, LatestFrameSlot } from "../../drivers/camera/frame.js";
import type { DetectionConfig } from "../config/sections/detection.js";
import { createSession, type ModelSession, type ProviderName, type SessionOptions } from "../inference/session.js";
import { loadDetectionManifest, type DetectionManifest, type VariantName } from "../inference/manifest.js";
import { TensorBuffer } from "../inference/tensorBuffer.js";
import { warmUp } from "../inference/warmup.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { MessageSink } from "../mqtt/sink.js";
import type { Topics } from "../mqtt/topics.js";
import type { Part, PartHealth, PartState } from "../part.js";
import { loadWithFallback, openDetectionSession, type ModelStore, type ModelVersion } from "../modelUpdate/index.js";
import { CameraPipeline } from "./cameraPipeline.js";
import { SnapshotStore, type SnapshotOptions } from "./snapshots.js";
import { StallWatchdog } from "./stallWatchdog.js";
import type { ObjectOut } from "./types.js";

/** A camera as the detector sees it: its frames and how often to take one. */
export interface DetectorCamera {
  id: string;
  fps: number;
  slot: LatestFrameSlot;
  detection: DetectionConfig;
  /** Resolved snapshot options when snapshots are on. */
  snapshots?: SnapshotOptions;
}

export interface DetectorOptions {
  modelId: string;
  manifestFile: string;
  providers: readonly ProviderName[];
  threads: number;
  variant: VariantName | "auto";
  warmupRuns: number;
  maxBatch: number;
  tensorrt: SessionOptions["tensorrt"];
  /** Where inference runs: a worker thread keeps the event loop free during a run. Default "main". */
  thread?: "main" | "worker";
  cameras: readonly DetectorCamera[];
  sink: MessageSink;
  topics: Topics;
  log: Logger;
  metrics?: Metrics;
  /** Called after each frame is handled, for benches and tests. */
  onFrame?: (frame: Frame, objects: ObjectOut[], inferenceMs: number) => void;
  /** Replaces createSession (tests that must pretend a provider exists). */
  create?: SessionOptions["create"];
  /** Updated model files (issue 8, update_model): the current one is loaded, falling back to the previous and the shipped one. */
  modelStore?: ModelStore;
  /** A run taking longer than this is stuck: its worker is ended and the session reopened. Default 60 s. */
  stallMs?: number;
}

const ABANDONED = Symbol("abandoned");

interface CameraState {
  cam: DetectorCamera;
  pipeline: CameraPipeline;
  snapshots?: SnapshotStore;
  nextDue: number;
  frames: number;
  fpsWindow: number[];
  timer?: NodeJS.Timeout;
}

/**
 * One model and the cameras that use it: loads the manifest, creates the one session they share
 * (provider chain, SHA-256, warm-up), then takes the latest frame of each camera round-robin at
 * its rate — several in one run when the model's batch dimension is dynamic — and hands each
 * frame's output to its camera's pipeline. Nothing queues: a camera's slot holds one frame.
 */
export class DetectorPart implements Part {
  readonly name: string;
  readonly #o: DetectorOptions;
  readonly #log: Logger;
  #model: ModelSession | undefined;
  #manifest: DetectionManifest | undefined;
  #buffer: TensorBuffer | undefined;
  #cams: CameraState[] = [];
  #rr = 0;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #state: PartState = "stopped";
  #error: string | undefined;
  #stage = "idle";
  #stageMs = Date.now();
  #errors = 0;
  #runs = 0;
  #inferMsSum = 0;
  #batch = 1;
  #version: ModelVersion | null = null;
  #inFlight: Promise<unknown> | undefined;
  #restarts = 0;
  #watchdog: StallWatchdog | undefined;
  #abandon: (() => void) | undefined;

  constructor(options: DetectorOptions) {
    this.#o = options;
    this.name = `detector:${options.modelId}`;
    this.#log = options.log;
  }

  get session(): ModelSession | undefined {
    return this.#model;
  }

  async start(): Promise<void> {
    this.#state = "starting";
    try {
      await this.#open();
    } catch (err) {
      this.#state = "failed";
      this.#error = (err as Error).message;
      throw err;
    }
    this.#running = true;
    this.#state = "running";
    this.#loop = this.#run();
    const stallMs = this.#o.stallMs ?? 60_000;
    this.#watchdog = new StallWatchdog({
      stallMs,
      checkMs: Math.min(5000, Math.max(50, stallMs / 4)),
      stage: () => ({ stage: this.#stage, sinceMs: this.#stageMs }),
      idle: new Set(["waiting for frames"]),
      onStall: (stage, ageMs) => void this.#restartStuck(stage, ageMs),
    });
    this.#watchdog.start();
  }

  /**
   * The watchdog's remedy: a stage that stopped progressing (a hung run in the worker thread)
   * gets a fresh session; the stuck one is ended, its run rejects, and the loop carries on.
   */
  async #restartStuck(stage: string, ageMs: number): Promise<void> {
    const manifest = this.#manifest;
    const stuck = this.#model;
    if (!manifest || !stuck || !this.#running) return;
    this.#state = "degraded";
    this.#error = `${stage} made no progress for ${ageMs} ms; restarting the model session`;
    this.#log.error({ model: this.#o.modelId, stage, stage_age_ms: ageMs }, `detector ${this.#o.modelId}: ${this.#error}`);
    try {
      const next = await openDetectionSession(manifest, this.#version, this.#sessionOptions());
      this.#model = next;
      this.#restarts++;
      this.#abandon?.();
      await stuck.terminate();
      this.#log.warn({ model: this.#o.modelId, provider: next.provider, restarts: this.#restarts }, "model session restarted");
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
    this.#cams = o.cameras.map((cam) => {
      const snapshots = cam.snapshots ? new SnapshotStore(cam.snapshots, this.#log) : undefined;
      const pipeline = new CameraPipeline(
        { cameraId: cam.id, modelId: o.modelId, manifest, detection: cam.detection, sink: o.sink, topics: o.topics, log: this.#log, ...(snapshots ? { snapshots } : {}) },
        now,
      );
      return { cam, pipeline, ...(snapshots ? { snapshots } : {}), nextDue: 0, frames: 0, fpsWindow: [] };
    });
    const store = o.modelStore;
    if (store) {
      const opened = await loadWithFallback(o.modelId, store, (v) => openDetectionSession(manifest, v, this.#sessionOptions()), this.#log);
      this.#model = opened.loaded;
      this.#version = opened.version;
    } else {
      this.#model = await createSession(manifest, this.#sessionOptions());
    }
    this.#batch = this.#model.dynamicBatch(manifest.input.name) ? Math.max(1, Math.min(o.maxBatch, o.cameras.length)) : 1;
    this.#buffer = new TensorBuffer(manifest.input, this.#batch);
    this.#buffer.data.fill(manifest.input.letterbox_pad);
    const warm = await warmUp(this.#model, manifest.input.name, this.#buffer, o.warmupRuns);
    this.#log.info({ model: o.modelId, provider: this.#model.provider, batch: this.#batch, warmup_ms: Math.round(warm), cameras: o.cameras.map((c) => c.id) }, "detector ready");
    for (const c of this.#cams) {
      c.timer = setInterval(() => this.#flush(c), c.cam.detection.counts_interval_s * 1000);
    }
  }

  #sessionOptions(): SessionOptions {
    const o = this.#o;
    return {
      providers: o.providers,
      threads: o.threads,
      variant: o.variant,
      thread: o.thread ?? "main",
      log: this.#log,
      ...(o.tensorrt ? { tensorrt: o.tensorrt } : {}),
      ...(o.create ? { create: o.create } : {}),
    };
  }

  /**
   * update_model's hook (issue 8): opens `version` (null: the shipped file) in a new session and
   * check-runs it, then swaps it in between two runs and releases the old one. Throws, with the
   * old session still running, when the new one fails to load or run.
   */
  async swapModel(version: ModelVersion | null): Promise<{ provider: string }> {
    const manifest = this.#manifest;
    if (!manifest || !this.#model || !this.#running) throw new Error(`detector ${this.#o.modelId} is not running`);
    const next = await openDetectionSession(manifest, version, this.#sessionOptions());
    if (this.#batch > 1 && !next.dynamicBatch(manifest.input.name)) {
      await next.release();
      throw new Error(`model ${this.#o.modelId}: the new file has a fixed batch size; ${this.#batch} cameras share a run`);
    }
    const old = this.#model;
    this.#model = next;
    this.#version = version;
    // A run already started on the old session finishes before it is released (its outcome is the loop's).
    await Promise.allSettled([this.#inFlight]);
    await old.release();
    this.#log.info({ model: this.#o.modelId, provider: next.provider, version: version?.sha256 ?? "shipped" }, "model swapped");
    return { provider: next.provider };
  }

  #flush(c: CameraState): void {
    try {
      c.pipeline.flushCounts();
    } catch (err) {
      this.#log.error({ err, model: this.#o.modelId, camera: c.cam.id }, "counts could not be published");
    }
  }

  #setStage(stage: string): void {
    this.#stage = stage;
    this.#stageMs = Date.now();
  }

  /** Ready cameras, round-robin from the one after the last served, up to the batch size. */
  #pick(now: number): CameraState[] {
    const picked: CameraState[] = [];
    const n = this.#cams.length;
    for (let k = 0; k < n && picked.length < this.#batch; k++) {
      const c = this.#cams[(this.#rr + k) % n]!;
      if (c.cam.slot.peek() !== undefined && now >= c.nextDue) picked.push(c);
    }
    if (picked.length > 0) this.#rr = (this.#cams.indexOf(picked[picked.length - 1]!) + 1) % n;
    return picked;
  }

  async #waitForWork(): Promise<void> {
    const now = Date.now();
    const waiting = this.#cams.filter((c) => c.cam.slot.peek() !== undefined);
    const due = waiting.length > 0 ? Math.min(...waiting.map((c) => c.nextDue)) - now : Infinity;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      if (Number.isFinite(due)) timer = setTimeout(resolve, Math.max(1, due));
      for (const c of this.#cams) if (c.cam.slot.peek() === undefined) void c.cam.slot.next().then(resolve);
    });
    clearTimeout(timer);
    this.#wake = undefined;
  }

  async #run(): Promise<void> {
    const manifest = this.#manifest!;
    const buffer = this.#buffer!;
    const inputName = manifest.input.name;
    const outputName = manifest.output.name;
    while (this.#running) {
      const now = Date.now();
      const batch = this.#pick(now);
      if (batch.length === 0) {
        this.#setStage("waiting for frames");
        await this.#waitForWork();
        continue;
      }
      const frames: Frame[] = [];
      try {
        this.#setStage("preprocess");
        for (const c of batch) {
          const f = c.cam.slot.take()!;
          c.nextDue = Math.max(c.nextDue + 1000 / c.cam.fps, now + 900 / c.cam.fps);
          buffer.fill(frames.length, f);
          frames.push(f);
        }
        this.#setStage("inference");
        const t0 = performance.now();
        // The session is read per run: update_model may swap it between two runs.
        this.#inFlight = this.#model!.run({ [inputName]: buffer.tensor(frames.length) });
        // The watchdog can abandon a run that never returns (resolving, so nothing is left unhandled).
        const abandoned = new Promise<typeof ABANDONED>((resolve) => (this.#abandon = () => resolve(ABANDONED)));
        const settled = await Promise.race([this.#inFlight, abandoned]);
        this.#abandon = undefined;
        if (settled === ABANDONED) throw new Error("run abandoned by the watchdog");
        const result = settled as Awaited<ReturnType<ModelSession["run"]>>;
        const inferMs = performance.now() - t0;
        this.#runs++;
        this.#inferMsSum += inferMs;
        this.#o.metrics?.histogram("cityedge_inference_seconds", "Inference time per run", [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2]).observe(inferMs / 1000, { model: this.#o.modelId, provider: this.#model!.provider });
        const out = result[outputName];
        if (!out) throw new Error(`model ${this.#o.modelId}: no output "${outputName}" (outputs: ${Object.keys(result).join(", ")})`);
        this.#setStage("postprocess");
        const data = out.data as Float32Array;
        batch.forEach((c, b) => {
          const f = frames[b]!;
          const objects = c.pipeline.process(f, data, out.dims, b, inferMs / frames.length);
          c.frames++;
          c.fpsWindow.push(Date.now());
          if (c.fpsWindow.length > 30) c.fpsWindow.shift();
          this.#o.metrics?.counter("cityedge_detect_frames_total", "Frames run through detection").inc({ camera: c.cam.id });
          this.#o.onFrame?.(f, objects, inferMs);
        });
        if (this.#state === "degraded") this.#state = "running";
      } catch (err) {
        this.#errors++;
        this.#state = "degraded";
        this.#error = (err as Error).message;
        // One bad frame must not flood the log at frame rate.
        if (this.#errors <= 3 || this.#errors % 100 === 0) this.#log.error({ err, model: this.#o.modelId, errors: this.#errors, stage: this.#stage, cameras: batch.map((c) => c.cam.id) }, "detection failed for a frame");
        // Yield so a persistent failure cannot starve the event loop.
        await new Promise((r) => setImmediate(r));
      }
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#watchdog?.stop();
    this.#wake?.();
    await this.#loop;
    this.#loop = undefined;
    for (const c of this.#cams) {
      clearInterval(c.timer);
      // The partial interval is published too: counts are never silently lost at a stop.
      if (this.#model) this.#flush(c);
      await c.snapshots?.idle();
    }
    await this.#model?.release();
    this.#model = undefined;
    this.#state = "stopped";
  }

  health(): PartHealth {
    const cameras: Record<string, unknown> = {};
    for (const c of this.#cams) {
      const w = c.fpsWindow;
      const fps = w.length > 1 ? ((w.length - 1) * 1000) / (w[w.length - 1]! - w[0]!) : 0;
      cameras[c.cam.id] = { frames: c.frames, fps: Math.round(fps * 10) / 10, dropped: c.cam.slot.dropped, ...c.pipeline.health() };
    }
    return {
      state: this.#state,
      ...(this.#error !== undefined ? { error: this.#error } : {}),
      model: this.#o.modelId,
      provider: this.#model?.provider ?? null,
      variant: this.#model?.variant ?? null,
      model_version: this.#version?.sha256 ?? "shipped",
      skipped_providers: this.#model?.skipped ?? [],
      batch: this.#batch,
      runs: this.#runs,
      inference_ms_avg: this.#runs > 0 ? Math.round((this.#inferMsSum / this.#runs) * 10) / 10 : null,
      errors: this.#errors,
      stage: this.#stage,
      stage_age_ms: Date.now() - this.#stageMs,
      session_restarts: this.#restarts,
      cameras,
    };
  }
}
