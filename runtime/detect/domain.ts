import type { CameraConfig } from "../config/sections/cameras.js";
import type { DetectionManifest } from "./detectionManifest.js";

/**
 * Why a camera should not run a model: one trained only on synthetic scenes (manifest `domain:
 * synthetic`, the demo's model) on a camera that is not a recording. Undefined when fine.
 */
export function syntheticModelWarning(
  cam: Pick<CameraConfig, "id" | "url">,
  modelId: string,
  manifest: DetectionManifest | Error,
): string | undefined {
  if (manifest instanceof Error || manifest.domain !== "synthetic" || cam.url.startsWith("file:")) return undefined;
  return `camera "${cam.id}" runs model "${modelId}", which was trained only on synthetic scenes (manifest domain: synthetic): on a real camera it misses vehicles and finds false ones; use a real COCO detector (cityedge models fetch yolox-nano)`;
}
