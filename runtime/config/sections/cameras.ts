import { z } from "zod";
import type { CameraSourceKind } from "../../../drivers/camera/source.js";
import { kindOfUrl, SOURCE_KINDS, unclaimedUrlProblem } from "../../../drivers/camera/sources.js";
import { redactUrl } from "../../log/logger.js";
import { durationMs, id, port } from "./common.js";
import { DETECTION_SCHEMA } from "./detection.js";

const size = (what: string) => z.number().int().min(16).max(4096).describe(what);

/** The keys every camera has, whatever its source. */
const COMMON = {
  id: id("camera id"),
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
};

type Kind = (typeof SOURCE_KINDS)[number];
type SourceConfigOf<K> = K extends CameraSourceKind<infer N, infer S> ? z.output<z.ZodObject<S & { source: z.ZodLiteral<N> }>> : never;

/** What a camera's config holds: its common keys, and its source kind's (told apart by `source`). */
export type CameraConfig = z.output<z.ZodObject<typeof COMMON>> & SourceConfigOf<Kind>;

/**
 * A camera without `source:` takes the kind that claims its url (rtsp:// → rtsp, …), so a plain
 * `url:` keeps working; a url no kind claims is an error at the url, naming the known forms.
 */
function inferSource(value: unknown, ctx: z.RefinementCtx): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value) || "source" in value) return value;
  const url = (value as { url?: unknown }).url;
  if (url === undefined) ctx.addIssue({ code: "custom", path: ["url"], message: `is required (where frames come from)` });
  else if (typeof url !== "string") return value;
  else {
    const kind = kindOfUrl(url);
    if (kind) return { ...value, source: kind.kind };
    ctx.addIssue({ code: "custom", path: ["url"], message: unclaimedUrlProblem(url, `"${redactUrl(url)}"`) });
  }
  return value;
}

/**
 * A camera: its common keys, plus those of its source kind (`source`: rtsp, http, file, v4l2;
 * each kind's file in drivers/camera defines its own keys), as a union told apart by `source`.
 */
export const CAMERA_SCHEMA: z.ZodType<CameraConfig, unknown> = z.preprocess(
  inferSource,
  z.discriminatedUnion("source", SOURCE_KINDS.map((k) => z.strictObject({ ...COMMON, ...k.shape })) as unknown as [z.ZodObject, ...z.ZodObject[]]),
) as unknown as z.ZodType<CameraConfig, unknown>;

/** The reconnect delays a camera has when its config sets none. */
export const DEFAULT_CAMERA_BACKOFF = COMMON.backoff.parse(undefined);

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

export type LiveViewConfig = z.output<typeof LIVE_VIEW_SCHEMA>;
