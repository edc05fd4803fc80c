import sharp from "sharp";
import type { z } from "zod";
import { COMMAND_PARAMS } from "../contract/index.js";
import type { Frame } from "../../drivers/camera/frame.js";
import { CommandError, type CommandHandler } from "./types.js";

/** What snapshot needs from the cameras: the newest frame of one. */
export interface FrameSource {
  cameraIds(): string[];
  latestFrame(cameraId: string): Frame | undefined;
}

const PARAMS = COMMAND_PARAMS.snapshot;

/** Encodes the picture part of a frame (without the letterbox padding) as a JPEG. */
export async function frameToJpeg(frame: Frame, quality: number): Promise<{ jpeg: Buffer; width: number; height: number }> {
  let data = frame.data;
  if (frame.format === "bgr24") {
    data = Buffer.from(frame.data);
    for (let i = 0; i + 2 < data.length; i += 3) {
      const b = data[i]!;
      data[i] = data[i + 2]!;
      data[i + 2] = b;
    }
  }
  const lb = frame.letterbox;
  const left = Math.max(0, Math.round(lb.pad_x));
  const top = Math.max(0, Math.round(lb.pad_y));
  const width = Math.min(frame.width - left, Math.round(lb.src_width * lb.scale)) || frame.width;
  const height = Math.min(frame.height - top, Math.round(lb.src_height * lb.scale)) || frame.height;
  const jpeg = await sharp(data, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .extract({ left, top, width, height })
    .jpeg({ quality })
    .toBuffer();
  return { jpeg, width, height };
}

/** `snapshot`: a JPEG of a camera's newest frame, base64 in the response. */
export function snapshotCommand(frames: FrameSource): CommandHandler<z.output<typeof PARAMS>> {
  return {
    name: "snapshot",
    params: PARAMS,
    async run({ camera, quality }) {
      const ids = frames.cameraIds();
      if (!ids.includes(camera)) throw new CommandError("not_found", `unknown camera "${camera}" (cameras: ${ids.join(", ") || "none"})`);
      const frame = frames.latestFrame(camera);
      if (!frame) throw new CommandError("not_found", `camera "${camera}" has no frame yet`);
      const { jpeg, width, height } = await frameToJpeg(frame, quality);
      return {
        camera,
        frame_index: frame.index,
        captured_at: new Date(frame.arrival_ms).toISOString(),
        width,
        height,
        content_type: "image/jpeg",
        jpeg_base64: jpeg.toString("base64"),
      };
    },
  };
}
