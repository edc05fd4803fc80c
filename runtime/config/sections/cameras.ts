import { z } from "zod";
import { id } from "./common.js";

export const CAMERA_SCHEMA = z.strictObject({
  id: id("camera id"),
  url: z
    .string()
    .regex(/^(rtsp|rtsps|http|https|file):\/\/\S+$|^\/dev\/video\d+$/, "must be rtsp://, rtsps://, http(s)://, file:// or /dev/videoN")
    .describe("Where frames come from"),
  enabled: z.boolean().default(true).describe("Set false to keep a camera configured but not running"),
  fps: z.number().min(0.1).max(60).default(10).describe("Frames per second taken from the stream"),
  model: z.string().optional().describe("Id of the model (in `models`) that runs on this camera"),
});

export const CAMERAS_SCHEMA = z.array(CAMERA_SCHEMA).default([]).describe("Cameras wired to this device");
