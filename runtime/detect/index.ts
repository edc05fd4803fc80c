/**
 * The detection pipeline: per model a {@link DetectorPart} (one shared session, round-robin over
 * its cameras' latest frames), per camera a {@link CameraPipeline} (decode, NMS, letterbox
 * mapping, tracking, counting, road condition, detections/counts messages, snapshots).
 */
import path from "node:path";
import type { FrameSpec } from "../../drivers/camera/letterbox.js";
import type { LatestFrameSlot } from "../../drivers/camera/frame.js";
import type { CameraConfig } from "../config/sections/cameras.js";
import { resolvePath } from "../config/load.js";
import type { PartContext } from "../part.js";
import { loadDetectionManifest, type DetectionManifest } from "../inference/manifest.js";
import { ModelStore } from "../modelUpdate/store.js";
import type { MessageSink } from "../mqtt/sink.js";
import { DetectorPart, type DetectorCamera } from "./detectorPart.js";

export { CameraPipeline } from "./cameraPipeline.js";
export { DetectorPart, type DetectorCamera, type DetectorOptions } from "./detectorPart.js";

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
    };
  };
}

/**
 * One detector part per model that a running camera uses, after the cameras in start order.
 * `cameras` maps camera id to the part holding its latest-frame slot.
 */
export function buildDetection(ctx: PartContext, sink: MessageSink, cameras: ReadonlyMap<string, { slot: LatestFrameSlot }>): DetectorPart[] {
  const manifests = new Map<string, DetectionManifest | Error>();
  const byModel = new Map<string, DetectorCamera[]>();
  for (const cam of ctx.config.cameras) {
    const found = modelOf(ctx, cam, manifests);
    const source = cameras.get(cam.id);
    if (!found || !source) continue;
    const s = cam.detection.snapshots;
    const list = byModel.get(found.model.id) ?? [];
    list.push({
      id: cam.id,
      fps: cam.fps,
      slot: source.slot,
      detection: cam.detection,
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
    });
    byModel.set(found.model.id, list);
  }
  const parts: DetectorPart[] = [];
  for (const [modelId, cams] of byModel) {
    const model = ctx.config.models.find((m) => m.id === modelId)!;
    parts.push(
      new DetectorPart({
        modelId,
        modelStore: new ModelStore(ctx.dataDir),
        manifestFile: resolvePath(ctx.loaded, model.manifest),
        providers: model.providers,
        threads: model.threads,
        instances: model.instances,
        variant: model.variant,
        warmupRuns: model.warmup_runs,
        thread: model.inference_thread,
        maxBatch: model.max_batch,
        tensorrt: {
          fp16: model.tensorrt.fp16,
          int8: model.tensorrt.int8,
          cacheDir: model.tensorrt.cache_dir ? resolvePath(ctx.loaded, model.tensorrt.cache_dir) : path.join(ctx.dataDir, "trt-cache", modelId),
        },
        cameras: cams,
        sink,
        topics: ctx.topics,
        log: ctx.log.child({ module: "detect" }),
        metrics: ctx.metrics,
      }),
    );
  }
  return parts;
}
