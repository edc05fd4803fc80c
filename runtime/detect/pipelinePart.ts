import { loadDetectionManifest } from "./detectionManifest.js";
import type { Logger } from "../log/logger.js";
import type { DaemonBus } from "../events/events.js";
import type { Part, PartHealth } from "../part.js";
import { CameraDetection, type CameraDetectionStats, type DetectorCamera } from "./cameraDetection.js";
import type { DetectorPart } from "./detectorPart.js";

export interface PipelinePartOptions {
  camera: DetectorCamera;
  /** The detector (one per model) whose session runs this camera's frames. */
  detector: DetectorPart;
  /** The model's manifest file: labels, decoder and thresholds for this camera's pipeline. */
  manifestFile: string;
  /** Where the camera's detections and counts are emitted. */
  bus: DaemonBus;
  log: Logger;
}

/** A camera's pipeline in health: the model it joins and, while it runs, its counts. */
export type PipelineHealth = PartHealth & { model: string } & Partial<CameraDetectionStats>;

/**
 * One camera's detection as a part of its own (`pipeline:<camera id>`): it joins its model's
 * detector at start and leaves it at stop, so changing one camera's lines, zones, classes or
 * snapshots restarts only this, not the model session the other cameras share.
 */
export class PipelinePart implements Part {
  readonly name: string;
  readonly kind = "pipeline";
  readonly #o: PipelinePartOptions;
  #unit: CameraDetection | undefined;

  constructor(opts: PipelinePartOptions) {
    this.#o = opts;
    this.name = `pipeline:${opts.camera.id}`;
  }

  /** The camera it is for. */
  get id(): string {
    return this.#o.camera.id;
  }

  async start(): Promise<void> {
    const o = this.#o;
    // The manifest gives labels and the decoder; a label the model lacks fails this camera only.
    const manifest = loadDetectionManifest(o.manifestFile);
    const unit = new CameraDetection({ camera: o.camera, modelId: o.detector.modelId, manifest, bus: o.bus, log: o.log });
    this.#unit = unit;
    unit.startCounts();
    o.detector.attach(unit);
    const d = o.camera.detection;
    o.camera.observer?.started?.(o.camera.id, {
      model: o.detector.modelId,
      labels: manifest.labels,
      counts_interval_s: d.counts_interval_s,
      lines: d.lines,
      zones: d.zones,
    });
  }

  async stop(): Promise<void> {
    const unit = this.#unit;
    if (!unit) return;
    this.#unit = undefined;
    await this.#o.detector.detach(unit);
    await unit.close(true);
    this.#o.camera.observer?.stopped?.(this.#o.camera.id);
  }

  health(): PipelineHealth {
    const unit = this.#unit;
    if (!unit) return { state: "stopped", model: this.#o.detector.modelId };
    return { state: "running", model: this.#o.detector.modelId, ...unit.health() };
  }
}
