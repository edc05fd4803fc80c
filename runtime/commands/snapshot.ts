import type { z } from "zod";
import { COMMAND_PARAMS } from "../contract/index.js";
import type { Picture } from "../detect/picture.js";
import { CommandError, type CommandHandler } from "./types.js";

export { frameToJpeg } from "../detect/picture.js";

/** What snapshot needs from the cameras: their ids and a picture of one. */
export interface FrameSource {
  cameraIds(): string[];
  /** The camera's picture (at its own resolution when it has stills), undefined before its first frame. */
  picture(cameraId: string, o: { boxes: boolean; quality: number }): Promise<Picture | undefined>;
}

const PARAMS = COMMAND_PARAMS.snapshot;

/** `snapshot`: a JPEG of a camera's newest picture, base64 in the response; with `boxes`, its detections, labels, lines and zones drawn. */
export function snapshotCommand(frames: FrameSource): CommandHandler<z.output<typeof PARAMS>> {
  return {
    name: "snapshot",
    params: PARAMS,
    async run({ camera, quality, boxes }) {
      const ids = frames.cameraIds();
      if (!ids.includes(camera)) throw new CommandError("not_found", `unknown camera "${camera}" (cameras: ${ids.join(", ") || "none"})`);
      const pic = await frames.picture(camera, { boxes, quality });
      if (!pic) throw new CommandError("not_found", `camera "${camera}" has no frame yet`);
      return {
        camera,
        frame_index: pic.frame_index,
        captured_at: pic.captured_at,
        width: pic.width,
        height: pic.height,
        resolution: pic.resolution,
        ...(boxes ? { boxes: pic.objects ?? 0, ...(pic.boxes_frame_index !== undefined ? { boxes_frame_index: pic.boxes_frame_index } : {}) } : {}),
        content_type: "image/jpeg",
        jpeg_base64: pic.jpeg.toString("base64"),
      };
    },
  };
}
