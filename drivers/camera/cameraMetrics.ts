import type { Counter, Gauge, Metrics } from "../../runtime/metrics.js";

/** The Prometheus series every camera reports into, labelled by camera id. */
export interface CameraMetrics {
  frames: Counter;
  dropped: Counter;
  restarts: Counter;
  corrupt: Counter;
  fps: Gauge;
}

export function cameraMetrics(m: Metrics): CameraMetrics {
  return {
    frames: m.counter("cityedge_camera_frames_total"),
    dropped: m.counter("cityedge_camera_dropped_frames_total"),
    restarts: m.counter("cityedge_camera_restarts_total"),
    corrupt: m.counter("cityedge_camera_corrupt_total"),
    fps: m.gauge("cityedge_camera_fps"),
  };
}
