import sharp from "sharp";
import { describe, expect, it } from "vitest";
import type { Frame } from "../drivers/camera/frame.js";
import { frameToJpeg } from "../runtime/commands/snapshot.js";

/** A 64x64 letterboxed frame: a 64x32 picture (left half pure red, right half pure blue) on grey. */
function frame(format: "rgb24" | "bgr24"): Frame {
  const w = 64;
  const h = 64;
  const data = Buffer.alloc(w * h * 3, 114);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < w; x++) {
      const [r, g, b] = x < 32 ? [255, 0, 0] : [0, 0, 255];
      const i = (y * w + x) * 3;
      data.set(format === "rgb24" ? [r, g, b] : [b, g, r], i);
    }
  }
  return {
    camera_id: "c",
    index: 7,
    width: w,
    height: h,
    format,
    data,
    arrival_ms: 0,
    letterbox: { src_width: 128, src_height: 64, scale: 0.5, pad_x: 0, pad_y: 0 },
  };
}

describe("snapshot JPEGs", () => {
  for (const format of ["rgb24", "bgr24"] as const) {
    it(`crops the letterbox padding and keeps the colours of ${format} frames`, async () => {
      const { jpeg, width, height } = await frameToJpeg(frame(format), 90);
      expect([width, height]).toEqual([64, 32]);
      const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([64, 32, 3]);
      const px = (x: number, y: number) => [...data.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3)];
      const [lr, lg, lb] = px(8, 16);
      const [rr, rg, rb] = px(56, 16);
      expect(lr).toBeGreaterThan(200);
      expect(Math.max(lg!, lb!)).toBeLessThan(60);
      expect(rb).toBeGreaterThan(200);
      expect(Math.max(rr!, rg!)).toBeLessThan(60);
    });
  }
});
