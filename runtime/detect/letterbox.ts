import type { Detection } from "./types.js";

/** How a source picture sits in the model input: model px = source px × scale + pad. */
export interface Letterbox {
  src_width: number;
  src_height: number;
  scale: number;
  pad_x: number;
  pad_y: number;
}

/** The letterbox that fits a source picture into the model input, top-left or centred. */
export function fitLetterbox(srcWidth: number, srcHeight: number, dstWidth: number, dstHeight: number, centre = false): Letterbox {
  if (srcWidth <= 0 || srcHeight <= 0) throw new Error(`source size must be positive, got ${srcWidth}x${srcHeight}`);
  const scale = Math.min(dstWidth / srcWidth, dstHeight / srcHeight);
  const w = Math.round(srcWidth * scale);
  const h = Math.round(srcHeight * scale);
  return {
    src_width: srcWidth,
    src_height: srcHeight,
    scale,
    pad_x: centre ? Math.floor((dstWidth - w) / 2) : 0,
    pad_y: centre ? Math.floor((dstHeight - h) / 2) : 0,
  };
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/**
 * Maps a box from model-input pixels back through the letterbox to the source picture,
 * normalized to 0..1 and clipped to it. Returns undefined for a box that lies in the padding
 * only (nothing of it is in the picture).
 */
export function toSourceNormalized(d: Detection, lb: Letterbox): Detection | undefined {
  const sx = lb.scale * lb.src_width;
  const sy = lb.scale * lb.src_height;
  const x1 = clamp01((d.x1 - lb.pad_x) / sx);
  const y1 = clamp01((d.y1 - lb.pad_y) / sy);
  const x2 = clamp01((d.x2 - lb.pad_x) / sx);
  const y2 = clamp01((d.y2 - lb.pad_y) / sy);
  if (!(x2 > x1 && y2 > y1)) return undefined;
  return { x1, y1, x2, y2, score: d.score, class_id: d.class_id };
}
