/**
 * The detection pipeline: per model a {@link DetectorPart} (one shared session, round-robin over
 * its cameras' latest frames), per camera a {@link PipelinePart} that joins it with its
 * {@link CameraPipeline} (decode, NMS, letterbox mapping, tracking, counting, road condition,
 * detections/counts messages, snapshots).
 */
import type { DetectionObserver } from "./types.js";
import path from "node:path";
import type { FrameSpec } from "../../drivers/camera/letterbox.js";
import type { LatestFrameSlot } from "../../drivers/camera/frame.js";
import type { CameraConfig } from "../config/sections/cameras.js";
import { resolvePath } from "../config/load.js";
import type { Part, PartContext } from "../part.js";
import { fileDigest } from "../supervise/digest.js";
import { gpuSettingsOf } from "../inference/providerOptions.js";
import { loadDetectionManifest, type DetectionManifest } from "./detectionManifest.js";
import { syntheticModelWarning } from "./domain.js";
import { ModelStore } from "../modelUpdate/store.js";
import type { DetectorCamera } from "./cameraDetection.js";
import { DetectorPart, sessionPlan } from "./detectorPart.js";
import { PipelinePart } from "./pipelinePart.js";

export type { DetectionObserver, LineTally, ObjectOut, PipelineInfo } from "./types.js";
export { CameraDetection, type DetectorCamera } from "./cameraDetection.js";
export { CameraPipeline } from "./cameraPipeline.js";
export { DetectorPart, type DetectorOptions } from "./detectorPart.js";
export { PipelinePart } from "./pipelinePart.js";

/** The model config and manifest a camera's detection uses, or undefined when it runs none. */
function modelOf(ctx: PartContext, cam: CameraConfig, manifests: Map<string, DetectionManifest | Error>) {
  if (!cam.enabled || !cam.detection.enabled || cam.model === undefined) return undefined;
  const model = ctx.config.models.find((m) => m.id === cam.model);
  if (!model) return undefined;
  let manifest = manifests.get(model.id);
  if (manifest === undefined) {
    try {
      manifest = loadDetectionManifest(resolvePath(ctx.loaded, model.manifest));
    } catch (err) {
      manifest = err as Error;
    }
    manifests.set(model.id, manifest);
  }
  return { model, manifest };
}

/**
 * What the camera drivers should deliver for each camera that runs detection: frames at the
 * model's input size, in its channel order, letterboxed with its pad value. A model whose
 * manifest cannot be read gives undefined here; its detector then fails at start, by name.
 */
export function detectionFrameSpec(ctx: PartContext): (cam: CameraConfig) => Partial<FrameSpec> | undefined {
  const manifests = new Map<string, DetectionManifest | Error>();
  return (cam) => {
    const m = modelOf(ctx, cam, manifests)?.manifest;
    if (m === undefined || m instanceof Error) return undefined;
    return {
      width: m.input.width,
      height: m.input.height,
      pixelFormat: m.input.color === "bgr" ? "bgr24" : "rgb24",
      padValue: m.input.letterbox_pad,
      // The picture sits where the model saw it in training: the camera follows its model.
      letterbox: m.input.letterbox,
    };
  };
}

export interface DetectionWiring {
  /** One per model that a running camera uses; `update_model` swaps their sessions. */
  detectors: DetectorPart[];
  /** One per camera that runs detection, after the detectors in start order. */
  pipelines: PipelinePart[];
}

function warnSyntheticModel(ctx: PartContext, cam: CameraConfig, modelId: string, manifest: DetectionManifest | Error): void {
  const warning = syntheticModelWarning(cam, modelId, manifest);
  if (warning) ctx.log.warn({ camera: cam.id, model: modelId }, warning);
}

/**
 * Per model that a running camera uses a detector part (its sessions, shared by its cameras),
 * and per such camera a pipeline part that joins it: a change to one camera's detection
 * settings restarts that camera's pipeline only. `cameras` maps camera id to its running part.
 */
export function buildDetection(
  ctx: PartContext,
  cameras: ReadonlyMap<string, Part & { slot: LatestFrameSlot; backpressure: boolean }>,
  watch?: { observer: DetectionObserver; deps: readonly Part[] },
): DetectionWiring {
  const manifests = new Map<string, DetectionManifest | Error>();
  const byModel = new Map<string, { cam: CameraConfig; camera: DetectorCamera; source: Part }[]>();
  for (const cam of ctx.config.cameras) {
    const found = modelOf(ctx, cam, manifests);
    const source = cameras.get(cam.id);
    if (!found || !source) continue;
    warnSyntheticModel(ctx, cam, found.model.id, found.manifest);
    const s = cam.detection.snapshots;
    const list = byModel.get(found.model.id) ?? [];
    list.push({
      cam,
      source,
      camera: {
        id: cam.id,
        fps: cam.fps,
        slot: source.slot,
        detection: cam.detection,
        ...(watch ? { observer: watch.observer } : {}),
        // A source read as consumed (a recording read as fast as detection goes) already holds only
        // the frames to take: no wall-clock pacing.
        paced: !source.backpressure,
        ...(s.enabled
          ? {
              snapshots: {
                dir: s.dir ? resolvePath(ctx.loaded, s.dir) : path.join(ctx.dataDir, "snapshots", cam.id),
                intervalMs: s.interval_s * 1000,
                maxBytes: s.max_bytes,
                quality: s.quality,
              },
            }
          : {}),
      },
    });
    byModel.set(found.model.id, list);
  }
  const detectors: DetectorPart[] = [];
  const pipelines: PipelinePart[] = [];
  const log = ctx.log.child({ module: "detect" });
  for (const [modelId, cams] of byModel) {
    const model = ctx.config.models.find((m) => m.id === modelId)!;
    const manifestFile = resolvePath(ctx.loaded, model.manifest);
    const manifest = fileDigest(manifestFile);
    const detector = ctx.part(
      new DetectorPart({
        modelId,
        modelStore: new ModelStore(ctx.dataDir),
        manifestFile,
        providers: model.providers,
        threads: model.threads,
        instances: model.instances,
        variant: model.variant,
        warmupRuns: model.warmup_runs,
        thread: model.inference_thread,
        maxBatch: model.max_batch,
        gpu: gpuSettingsOf(
          model,
          model.tensorrt.cache_dir ? resolvePath(ctx.loaded, model.tensorrt.cache_dir) : path.join(ctx.dataDir, "trt-cache", modelId),
        ),
        cameras: [],
        plannedCameras: cams.length,
        bus: ctx.bus,
        log,
        metrics: ctx.metrics,
      }),
      // The cameras' count plans the instances and the batch; their settings are the pipelines' business.
      // Only what the count decides is in the slice: a camera added or removed reopens the sessions
      // only when it changes how many there are or the largest batch (on a GPU, the engine's profile).
      { slice: { model, manifest, plan: sessionPlan(model, cams.length) } },
    );
    detectors.push(detector);
    for (const { camera, source } of cams) {
      const { slot: _slot, observer: _observer, ...settings } = camera;
      pipelines.push(
        ctx.part(new PipelinePart({ camera, detector, manifestFile, bus: ctx.bus, log }), {
          slice: { camera: settings, manifest },
          deps: [detector, source, ...(watch?.deps ?? [])],
        }),
      );
    }
  }
  return { detectors, pipelines };
}
