import { z } from "zod";
import { BASE_OUTPUT, checkObjectnessRows, decodeObjectnessRows, one, oneDeclared, STRIDES, stridesFor, type DetectionDecoder } from "./common.js";

const SCHEMA = z.strictObject({
  decoder: z.literal("yolov5"),
  ...BASE_OUTPUT,
  strides: STRIDES.optional().describe("Anchor grid strides; the boxes are in pixels already, so they only check the anchor count"),
  anchors_per_cell: z.number().int().min(1).max(16).default(3).describe("Anchors per grid cell (YOLOv5: 3; a decoded YOLOX head: 1)"),
});
export type Yolov5Output = z.output<typeof SCHEMA>;

/**
 * YOLOv5 (and YOLOv7, and YOLOX exported with its decoding): `[B, N, 5 + C]` rows of cx, cy, w,
 * h in input pixels, objectness, then C class scores; score = objectness × class score.
 */
export const yolov5: DetectionDecoder<Yolov5Output> = {
  name: "yolov5",
  layout: "[B, N, 5+C]: cx, cy, w, h in input pixels, objectness, C class scores (YOLOv5, YOLOv7, YOLOX with decoding)",
  roles: [{ name: "output" }],
  schema: SCHEMA,
  stridesDivideInput: true,

  check: (outputs, g, o) => checkObjectnessRows(oneDeclared(outputs, "output"), g, "yolov5 [B, N, 5+C]", o.strides, o.anchors_per_cell),

  recognise(f) {
    if (f.outputs.length !== 1) return undefined;
    const out = f.outputs[0]!;
    const [, n, width] = out.shape;
    if (out.shape.length !== 3 || typeof n !== "number" || typeof width !== "number" || width < 6 || width >= n) return undefined;
    const opts = f.maxStride !== undefined ? { maxStride: f.maxStride } : {};
    const three = stridesFor(n, f.inputWidth, f.inputHeight, { ...opts, perCell: 3 });
    if (three) {
      return {
        output: { decoder: "yolov5", name: out.name, strides: three, anchors_per_cell: 3 },
        numClasses: width - 5,
        reason: `one output ${out.name} [${out.shape.join(", ")}]: ${n} rows = 3 anchors per cell of the stride ${three.join("/")} grid, ${width} = 4 + 1 objectness + ${width - 5} classes`,
      };
    }
    // One row per cell is YOLOX's grid; with an Exp in the graph the head decodes its own boxes.
    const one = stridesFor(n, f.inputWidth, f.inputHeight, { sets: [[8, 16, 32]] });
    if (one && f.ops.has("Exp")) {
      return {
        output: { decoder: "yolov5", name: out.name, strides: one, anchors_per_cell: 1 },
        numClasses: width - 5,
        reason: `one output ${out.name} [${out.shape.join(", ")}]: one row per cell of the stride ${one.join("/")} grid and an Exp in the graph (a YOLOX head that decodes its boxes)`,
      };
    }
    return undefined;
  },

  decode: (t, b, d) => decodeObjectnessRows(one(t, "output"), b, d, "yolov5", (x, row) => [x[row]!, x[row + 1]!, x[row + 2]!, x[row + 3]!]),
};
