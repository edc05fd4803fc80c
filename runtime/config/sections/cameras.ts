import { z } from "zod";
import { redactUrl } from "../../log/logger.js";
import { durationMs, id, port } from "./common.js";
import { DETECTION_SCHEMA } from "./detection.js";

/** Schemes a camera url may use; `/dev/videoN` (V4L2) has none. */
export const CAMERA_SCHEMES = ["rtsp", "rtsps", "http", "https", "file"] as const;

/**
 * Why a camera url cannot be used, or undefined when it can. Messages never repeat a password
 * (config errors are printed and logged).
 */
export function cameraUrlProblem(url: string): string | undefined {
  if (/^\/dev\/video\d+$/.test(url)) return undefined;
  const shown = `"${redactUrl(url)}"`;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) return `must be rtsp://, rtsps://, http(s)://, file:// or /dev/videoN, got ${shown}`;
  if (!(CAMERA_SCHEMES as readonly string[]).includes(scheme)) {
    return `unknown scheme "${scheme}" (known: ${CAMERA_SCHEMES.join(", ")}, or a /dev/videoN device), got ${shown}`;
  }
  if (/\s/.test(url)) return `must not contain spaces, got ${shown}`;
  if (scheme === "file") return url.length > "file://".length && url.startsWith("file://") ? undefined : `must be file://PATH, got ${shown}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `is not a valid URL, got ${shown}`;
  }
  if (parsed.hostname === "") return `has no host, got ${shown}`;
  return undefined;
}

const size = (what: string) => z.number().int().min(16).max(4096).describe(what);

export const CAMERA_SCHEMA = z.strictObject({
  id: id("camera id"),
  url: z
    .string()
    .superRefine((url, ctx) => {
      const problem = cameraUrlProblem(url);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .describe(
      "Where frames come from: rtsp(s)://[user:pass@]host[:port]/path, http(s):// (MJPEG stream or snapshot), file://PATH (relative paths are from the config file) or /dev/videoN",
    ),
  enabled: z.boolean().default(true).describe("Set false to keep a camera configured but not running"),
  fps: z
    .number()
    .min(0.1)
    .max(60)
    .default(10)
    .describe("Frames per second taken from the stream (never more than the stream has; no frames are duplicated)"),
  model: z.string().optional().describe("Id of the model (in `models`) that runs on this camera"),
  detection: DETECTION_SCHEMA.prefault({}),
  input_size: z
    .tuple([size("width"), size("height")])
    .default([416, 416])
    .describe("Frame size [width, height] ffmpeg letterboxes to when no model gives one"),
  pixel_format: z.enum(["rgb24", "bgr24"]).default("rgb24").describe("Pixel order of frames when no model gives one"),
  letterbox: z.enum(["top-left", "center"]).default("top-left").describe("Where the scaled picture sits in the frame; the rest is padding"),
  pad_value: z.number().int().min(0).max(255).default(114).describe("Grey level of the letterbox padding"),
  transport: z.enum(["tcp", "udp"]).default("tcp").describe("RTSP transport"),
  loop: z.boolean().default(true).describe("file:// sources: start again at the end"),
  realtime: z.boolean().default(true).describe("file:// sources: play at the clip's own speed instead of as fast as possible"),
  read_as_consumed: z
    .boolean()
    .default(false)
    .describe(
      "file:// sources with realtime false: read a frame only when detection has taken the last one, instead of decoding frames only to drop them (batch runs over recordings, benchmarks)",
    ),
  http_mode: z
    .enum(["stream", "snapshot"])
    .default("stream")
    .describe("http(s):// sources: a stream (MJPEG, …) or a still image fetched again for every frame"),
  v4l2_format: z
    .string()
    .regex(/^[a-z0-9_]+$/, "must be a V4L2 input format name such as mjpeg or yuyv422")
    .optional()
    .describe("/dev/videoN sources: input format asked of the device"),
  v4l2_size: z
    .string()
    .regex(/^\d+x\d+$/, "must be WIDTHxHEIGHT")
    .optional()
    .describe("/dev/videoN sources: capture size asked of the device, e.g. 1280x720"),
  hwaccel: z
    .string()
    .regex(/^[a-z0-9_]+$/, "must be an ffmpeg -hwaccel name such as cuda or vaapi")
    .optional()
    .describe("ffmpeg -hwaccel for decoding (default: software decode)"),
  decoder: z
    .string()
    .regex(/^[a-z0-9_]+$/, "must be an ffmpeg decoder name such as h264_nvv4l2dec or h264_cuvid")
    .optional()
    .describe("ffmpeg video decoder to force (e.g. h264_nvv4l2dec on JetPack 6 builds of ffmpeg); default: ffmpeg's choice"),
  still_interval_s: z
    .number()
    .min(0)
    .max(3600)
    .default(2)
    .describe(
      "About how often ffmpeg also writes a JPEG at the camera's own resolution (snapshots with boxes, the console's line editor), in frames taken: every still_interval_s × fps frames; 0 turns it off",
    ),
  stall_timeout_ms: durationMs(1000, 600_000).default(10_000).describe("Restart ffmpeg when no frame arrived for this long"),
  backoff: z
    .strictObject({
      initial_ms: durationMs(50, 60_000).default(1000).describe("First reconnect delay"),
      max_ms: durationMs(100, 600_000).default(30_000).describe("Reconnect delays double up to this cap"),
      reset_after_ms: durationMs(1000, 3_600_000).default(60_000).describe("Streaming this long resets the delay to initial_ms"),
    })
    .prefault({})
    .describe("Reconnect delays (with ±20% jitter)"),
});

export const CAMERAS_SCHEMA = z.array(CAMERA_SCHEMA).default([]).describe("Cameras wired to this device");

const MPEG1_RATES = [24, 25, 30, 50, 60];

export const LIVE_VIEW_SCHEMA = z
  .strictObject({
    enabled: z.boolean().default(false).describe("Serve MPEG-1 over WebSocket (for jsmpeg) at ws://host:port/cameras/<camera_id>"),
    host: z.string().min(1).default("127.0.0.1").describe("Address the live view listens on"),
    port: port().default(9109).describe("Port the live view listens on"),
    width: z.number().int().min(64).max(1920).default(640).describe("Width of the live picture (height keeps the aspect ratio)"),
    fps: z
      .number()
      .refine((v) => MPEG1_RATES.includes(v), { message: `must be a frame rate MPEG-1 can carry: ${MPEG1_RATES.join(", ")}` })
      .default(25)
      .describe("Frame rate of the live picture: 24, 25, 30, 50 or 60 (what MPEG-1 carries)"),
    bitrate_kbps: z.number().int().min(100).max(20_000).default(1000).describe("MPEG-1 bitrate"),
  })
  .describe("Browser live view of the cameras; ffmpeg runs only while someone watches");

export type CameraConfig = z.output<typeof CAMERA_SCHEMA>;
export type LiveViewConfig = z.output<typeof LIVE_VIEW_SCHEMA>;
