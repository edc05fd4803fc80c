import { z } from "zod";
import {
  anchorGrid,
  BASE_OUTPUT,
  checkObjectnessRows,
  decodeObjectnessRows,
  gridCount,
  one,
  oneDeclared,
  STRIDES,
  stridesFor,
  type DetectionDecoder,
} from "./common.js";

const SCHEMA = z.strictObject({
  decoder: z.literal("yolox"),
  ...BASE_OUTPUT,
  strides: STRIDES.default([8, 16, 32]).describe("Anchor grid strides the offsets are decoded on"),
});
export type YoloxOutput = z.output<typeof SCHEMA>;

/**
 * YOLOX exported without its decoding (Megvii's default): `[B, N, 5 + C]` rows, one per grid
 * cell, stride by stride: cx, cy as offsets in cells, w, h as log sizes in cells, objectness and
 * C class scores (sigmoided).
 */
export const yolox: DetectionDecoder<YoloxOutput> = {
  name: "yolox",
  layout: "[B, N, 5+C]: per grid cell x, y offsets and log w, h in cells, objectness, C class scores (YOLOX)",
  roles: [{ name: "output" }],
  schema: SCHEMA,
  stridesDivideInput: true,

  check: (outputs, g, o) => checkObjectnessRows(oneDeclared(outputs, "output"), g, "yolox [B, N, 5+C]", o.strides, 1),

  recognise(f) {
    if (f.outputs.length !== 1 || f.ops.has("Exp")) return undefined;
    const out = f.outputs[0]!;
    const [, n, width] = out.shape;
    if (out.shape.length !== 3 || typeof n !== "number" || typeof width !== "number" || width < 6 || width >= n) return undefined;
    // YOLOX heads have three levels; a four-level grid of this shape is NanoDet-Plus's.
    const strides = stridesFor(n, f.inputWidth, f.inputHeight, { sets: [[8, 16, 32]] });
    if (!strides) return undefined;
    return {
      output: { decoder: "yolox", name: out.name, strides },
      numClasses: width - 5,
      reason: `one output ${out.name} [${out.shape.join(", ")}]: one row per cell of the stride ${strides.join("/")} grid, ${width} = 4 + 1 objectness + ${width - 5} classes, and no Exp in the graph (the boxes are left as grid offsets)`,
    };
  },

  decode(t, b, d, o) {
    const out = one(t, "output");
    const grid = anchorGrid(d.inputWidth, d.inputHeight, o.strides);
    const n = out.dims[1];
    if (n !== grid.length / 3) {
      throw new Error(
        `yolox output has ${String(n)} anchors, strides [${o.strides.join(", ")}] on ${d.inputWidth}x${d.inputHeight} give ${gridCount(d.inputWidth, d.inputHeight, o.strides)}`,
      );
    }
    return decodeObjectnessRows(out, b, d, "yolox", (x, row, i) => {
      const s = grid[i * 3 + 2]!;
      return [(x[row]! + grid[i * 3]!) * s, (x[row + 1]! + grid[i * 3 + 1]!) * s, Math.exp(x[row + 2]!) * s, Math.exp(x[row + 3]!) * s];
    });
  },
};
