import sharp from "sharp";
import type { Frame } from "../../drivers/camera/frame.js";
import type { Still } from "../../drivers/camera/stills.js";
import { boxesSvg, type Geometry } from "./draw.js";
import type { RecentObjects } from "./recentObjects.js";
import type { ObjectOut } from "./types.js";

/** What a camera offers for a picture: stills at its own resolution, else its newest model-size frame. */
export interface PictureSource {
  readonly stills: readonly Still[];
  /** A copy of the newest model-size frame (its pixels are not reused while the picture is made). */
  latestFrame(): Frame | undefined;
}

export interface PictureOptions {
  /** Draw the detections of the pictured frame. */
  boxes: boolean;
  /** Draw the counting lines and zones. */
  geometry?: Geometry;
  quality: number;
}

export interface Picture {
  jpeg: Buffer;
  width: number;
  height: number;
  /** The camera frame the picture shows. */
  frame_index: number;
  captured_at: string;
  /** "camera": the camera's own resolution (a still); "model": the model-size frame, letterbox cropped away (stills are off or none came yet). */
  resolution: "camera" | "model";
  /** The frame whose detections are drawn (the pictured one, or the nearest handled), when boxes were asked for. */
  boxes_frame_index?: number;
  objects?: number;
}

/** The pixels of a frame without its letterbox padding, in RGB order. */
export async function framePicture(frame: Frame): Promise<{ data: Buffer; width: number; height: number }> {
  const lb = frame.letterbox;
  const left = Math.max(0, Math.round(lb.pad_x));
  const top = Math.max(0, Math.round(lb.pad_y));
  const width = Math.min(frame.width - left, Math.round(lb.src_width * lb.scale)) || frame.width;
  const height = Math.min(frame.height - top, Math.round(lb.src_height * lb.scale)) || frame.height;
  let img = sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } });
  if (frame.format === "bgr24")
    img = img.recomb([
      [0, 0, 1],
      [0, 1, 0],
      [1, 0, 0],
    ]);
  const data = await img.extract({ left, top, width, height }).raw().toBuffer();
  return { data, width, height };
}

/** Encodes the picture part of a frame (without the letterbox padding) as a JPEG. */
export async function frameToJpeg(frame: Frame, quality: number): Promise<{ jpeg: Buffer; width: number; height: number }> {
  const { data, width, height } = await framePicture(frame);
  const jpeg = await sharp(data, { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
  return { jpeg, width, height };
}

/** The still to show: the newest one whose frame detection has already handled, else the oldest kept. */
function pickStill(stills: readonly Still[], handled: number | undefined): Still | undefined {
  for (let i = stills.length - 1; i >= 0; i--) if (handled !== undefined && stills[i]!.frameIndex <= handled) return stills[i];
  return stills[0];
}

/**
 * A camera's picture for snapshots and the console's editor: a still at the camera's own
 * resolution when there is one, else the model-size frame; with the detections of the frame it
 * shows (or of the nearest frame detection handled) and the lines and zones drawn when asked.
 */
export async function cameraPicture(
  cameraId: string,
  source: PictureSource,
  recent: RecentObjects | undefined,
  o: PictureOptions,
): Promise<Picture | undefined> {
  const still = pickStill(source.stills, recent?.newest(cameraId));
  let base: { img: sharp.Sharp; width: number; height: number; jpeg?: Buffer; frame_index: number; at: number; resolution: Picture["resolution"] };
  if (still) {
    base = {
      img: sharp(still.jpeg),
      width: still.width,
      height: still.height,
      jpeg: still.jpeg,
      frame_index: still.frameIndex,
      at: still.at_ms,
      resolution: "camera",
    };
    const meta = await base.img.metadata();
    base.width = meta.width ?? still.width;
    base.height = meta.height ?? still.height;
  } else {
    const frame = source.latestFrame();
    if (!frame) return undefined;
    const { data, width, height } = await framePicture(frame);
    base = {
      img: sharp(data, { raw: { width, height, channels: 3 } }),
      width,
      height,
      frame_index: frame.index,
      at: frame.arrival_ms,
      resolution: "model",
    };
  }
  const found = o.boxes ? recent?.near(cameraId, base.frame_index) : undefined;
  const objects: readonly ObjectOut[] = found?.objects ?? [];
  const draw = o.boxes || (o.geometry !== undefined && (o.geometry.lines.length > 0 || o.geometry.zones.length > 0));
  const jpeg =
    !draw && base.jpeg
      ? base.jpeg
      : await (draw ? base.img.composite([{ input: boxesSvg(objects, base.width, base.height, o.geometry), top: 0, left: 0 }]) : base.img)
          .jpeg({ quality: o.quality })
          .toBuffer();
  return {
    jpeg,
    width: base.width,
    height: base.height,
    frame_index: base.frame_index,
    captured_at: new Date(base.at).toISOString(),
    resolution: base.resolution,
    ...(o.boxes ? { objects: objects.length, ...(found ? { boxes_frame_index: found.frameIndex } : {}) } : {}),
  };
}
