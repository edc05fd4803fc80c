import type { Frame, LatestFrameSlot } from "../../drivers/camera/frame.js";
import type { DetectionConfig } from "../config/sections/detection.js";
import type { DetectionManifest } from "./detectionManifest.js";
import type { Logger } from "../log/logger.js";
import type { DaemonBus } from "../events/events.js";
import { CameraPipeline, type PipelineStats } from "./cameraPipeline.js";
import { MotionGate, type MotionStats } from "./motionGate.js";
import { SnapshotStore, type SnapshotOptions } from "./snapshots.js";
import type { DetectionObserver, ObjectOut } from "./types.js";

/** A camera as the detector sees it: its frames and how often to take one. */
export interface DetectorCamera {
  id: string;
  fps: number;
  slot: LatestFrameSlot;
  detection: DetectionConfig;
  /** Resolved snapshot options when snapshots are on. */
  snapshots?: SnapshotOptions;
  /**
   * Take at most `fps` frames per second of wall-clock time (the default). False for a source
   * that already delivers only the frames it should, as fast as they are taken (a recording read
   * as consumed): its frames are taken as soon as they arrive.
   */
  paced?: boolean;
  /** Sees the camera's handled frames and when its pipeline starts and stops (the web console). */
  observer?: DetectionObserver;
}

/** One camera's detection in health: frames run, their rate, frames dropped before they could be taken, and the pipeline's counts. */
export type CameraDetectionStats = PipelineStats & { frames: number; fps: number; dropped: number; motion?: MotionStats };

export interface CameraDetectionOptions {
  camera: DetectorCamera;
  modelId: string;
  manifest: DetectionManifest;
  /** Where the camera's detections and counts are emitted. */
  bus: DaemonBus;
  log: Logger;
}

/**
 * One camera's share of a detector: its pipeline (tracking, counting, messages), its snapshots,
 * its counts interval and where the detector is with its frames. A unit can join a running
 * detector and leave it again, so one camera's settings change without touching the session.
 */
export class CameraDetection {
  readonly cam: DetectorCamera;
  readonly pipeline: CameraPipeline;
  readonly snapshots: SnapshotStore | undefined;
  /** Skips inference while nothing moves, when the camera's detection.motion is enabled. */
  readonly gate: MotionGate | undefined;
  readonly #log: Logger;
  readonly #modelId: string;
  #timer: NodeJS.Timeout | undefined;
  /** When the camera's next frame is due (the detector keeps to the camera's fps). */
  nextDue = 0;
  frames = 0;
  fpsWindow: number[] = [];
  /** A lane holds one of this camera's frames: the camera's frames are handled in order, one at a time. */
  #busy = false;
  #idle: (() => void)[] = [];

  /** Throws a clear error for labels the model does not have. */
  constructor(o: CameraDetectionOptions, nowMs = Date.now()) {
    this.cam = o.camera;
    this.#log = o.log;
    this.#modelId = o.modelId;
    this.snapshots = o.camera.snapshots ? new SnapshotStore(o.camera.snapshots, o.log) : undefined;
    this.gate = o.camera.detection.motion.enabled ? new MotionGate(o.camera.detection.motion) : undefined;
    this.pipeline = new CameraPipeline(
      {
        cameraId: o.camera.id,
        modelId: o.modelId,
        manifest: o.manifest,
        detection: o.camera.detection,
        bus: o.bus,
        log: o.log,
        streamClock: o.camera.paced === false,
        ...(this.snapshots ? { snapshots: this.snapshots } : {}),
      },
      nowMs,
    );
  }

  get busy(): boolean {
    return this.#busy;
  }

  set busy(v: boolean) {
    this.#busy = v;
    if (!v) for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Resolves once no lane holds a frame of this camera. */
  idle(): Promise<void> {
    return this.#busy ? new Promise((r) => this.#idle.push(r)) : Promise.resolve();
  }

  /** Publishes counts every `counts_interval_s`. */
  startCounts(): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.flush(), this.cam.detection.counts_interval_s * 1000);
  }

  /** Hands a handled frame to the observer (while its pixels are still valid). */
  observe(frame: Frame, objects: ObjectOut[]): void {
    const o = this.cam.observer;
    if (!o) return;
    try {
      o.frame(this.cam.id, frame, objects, () => this.pipeline.runningCounts());
    } catch (err) {
      this.#log.warn({ err, camera: this.cam.id }, "detection observer failed on a frame");
    }
  }

  flush(): void {
    try {
      this.pipeline.flushCounts();
    } catch (err) {
      this.#log.error({ err, model: this.#modelId, camera: this.cam.id }, "counts could not be published");
    }
  }

  /** Stops the counts interval; with `flush` the partial interval is published too (counts are never silently lost at a stop). */
  async close(flush: boolean): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (flush) this.flush();
    await this.snapshots?.idle();
  }

  health(): CameraDetectionStats {
    const w = this.fpsWindow;
    const fps = w.length > 1 ? ((w.length - 1) * 1000) / (w[w.length - 1]! - w[0]!) : 0;
    return {
      frames: this.frames,
      fps: Math.round(fps * 10) / 10,
      dropped: this.cam.slot.dropped,
      ...(this.gate ? { motion: this.gate.health() } : {}),
      ...this.pipeline.health(),
    };
  }
}
