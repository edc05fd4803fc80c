import type { Frame } from "../../drivers/camera/frame.js";
import type { DetectionObserver, ObjectOut } from "./types.js";

/** What detection found on one frame. */
export interface FrameObjects {
  frameIndex: number;
  arrival_ms: number;
  objects: readonly ObjectOut[];
}

const KEPT = 64;

/**
 * The objects of each camera's last frames, so a picture taken by another route (a still at the
 * camera's resolution) can carry the boxes of the very frame it shows.
 */
export class RecentObjects {
  readonly #byCamera = new Map<string, FrameObjects[]>();

  frame(cameraId: string, frame: Frame, objects: readonly ObjectOut[]): void {
    let ring = this.#byCamera.get(cameraId);
    if (!ring) this.#byCamera.set(cameraId, (ring = []));
    ring.push({ frameIndex: frame.index, arrival_ms: frame.arrival_ms, objects });
    if (ring.length > KEPT) ring.shift();
  }

  /** The newest frame index detection handled for a camera. */
  newest(cameraId: string): number | undefined {
    return this.#byCamera.get(cameraId)?.at(-1)?.frameIndex;
  }

  /**
   * The objects of `frameIndex`, else of the handled frame nearest to it (detection may have
   * skipped that very frame); undefined when nothing was handled within `maxGap` frames.
   */
  near(cameraId: string, frameIndex: number, maxGap = 30): FrameObjects | undefined {
    let best: FrameObjects | undefined;
    for (const f of this.#byCamera.get(cameraId) ?? []) {
      if (!best || Math.abs(f.frameIndex - frameIndex) < Math.abs(best.frameIndex - frameIndex)) best = f;
    }
    return best && Math.abs(best.frameIndex - frameIndex) <= maxGap ? best : undefined;
  }
}

/** Hands every event to each observer in turn; one that throws does not keep the others from theirs. */
export function fanOut(observers: readonly DetectionObserver[], onError: (err: unknown) => void): DetectionObserver {
  const each = (call: (o: DetectionObserver) => void) => {
    for (const o of observers) {
      try {
        call(o);
      } catch (err) {
        onError(err);
      }
    }
  };
  return {
    started: (cameraId, info) => each((o) => o.started?.(cameraId, info)),
    stopped: (cameraId) => each((o) => o.stopped?.(cameraId)),
    frame: (cameraId, frame, objects, running) => each((o) => o.frame(cameraId, frame, objects, running)),
  };
}
