import { z } from "zod";
import { defineSourceKind, type CameraSource } from "./source.js";

const DEVICE = /^\/dev\/video\d+$/;

const SHAPE = {
  source: z.literal("v4l2").describe("A USB (V4L2) camera; may be left out when url is /dev/videoN"),
  url: z.string().regex(DEVICE, "must be a V4L2 device such as /dev/video0").describe("The device, /dev/videoN"),
  v4l2_format: z
    .string()
    .regex(/^[a-z0-9_]+$/, "must be a V4L2 input format name such as mjpeg or yuyv422")
    .optional()
    .describe("Input format asked of the device"),
  v4l2_size: z
    .string()
    .regex(/^\d+x\d+$/, "must be WIDTHxHEIGHT")
    .optional()
    .describe("Capture size asked of the device, e.g. 1280x720"),
};

type V4l2Config = z.output<z.ZodObject<typeof SHAPE>>;

/** A USB camera at /dev/videoN, optionally asked for a capture format and size. */
export class V4l2Source implements CameraSource {
  readonly kind = "v4l2";
  readonly finite = false;
  readonly readsAsConsumed = false;
  readonly #cfg: V4l2Config;

  constructor(cfg: V4l2Config) {
    this.#cfg = cfg;
  }

  inputArgs(): string[] {
    return [
      "-f",
      "v4l2",
      ...(this.#cfg.v4l2_format ? ["-input_format", this.#cfg.v4l2_format] : []),
      ...(this.#cfg.v4l2_size ? ["-video_size", this.#cfg.v4l2_size] : []),
      "-i",
      this.#cfg.url,
    ];
  }
}

export const V4L2_SOURCE = defineSourceKind({
  kind: "v4l2",
  shape: SHAPE,
  schemes: [],
  forms: "/dev/videoN",
  claims: (url) => DEVICE.test(url),
  create: (cfg) => new V4l2Source(cfg),
});
