import type { CameraConfig } from "../../runtime/config/sections/cameras.js";
import type { FfmpegCaps } from "./ffmpegBinary.js";

/**
 * One kind of camera source (RTSP, file, HTTP, V4L2): what ffmpeg needs before `-i` to read it.
 * A new kind of source is a new file implementing this, plus one line in `createSource`.
 */
export interface CameraSource {
  readonly kind: "rtsp" | "file" | "http" | "v4l2";
  /** ffmpeg arguments up to and including `-i INPUT`. */
  inputArgs(caps: FfmpegCaps): string[];
  /** host:port to probe while waiting to reconnect (network sources), so a camera that comes back is noticed at once. */
  readonly endpoint?: { host: string; port: number };
  /** When ffmpeg ends normally, is that the end (a file that does not loop) rather than an outage? */
  readonly finite: boolean;
}

export type SourceConfig = Pick<
  CameraConfig,
  "url" | "transport" | "loop" | "realtime" | "http_mode" | "v4l2_format" | "v4l2_size" | "stall_timeout_ms"
>;
