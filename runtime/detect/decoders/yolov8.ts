import { z } from "zod";
import type { Detection } from "../types.js";
import {
  anchorProblem,
  BASE_OUTPUT,
  bestClass,
  dimsOf,
  one,
  oneDeclared,
  perBoxProblem,
  pushCentre,
  runDims,
  STRIDES,
  stridesFor,
  type DetectionDecoder,
} from "./common.js";

const SCHEMA = z.strictObject({
  decoder: z.literal("yolov8"),
  ...BASE_OUTPUT,
  strides: STRIDES.optional().describe("Anchor grid strides; the boxes are in pixels already, so they only check the anchor count"),
});
export type Yolov8Output = z.output<typeof SCHEMA>;

/**
 * Ultralytics YOLOv8 / YOLO11 (and our own detector): `[B, 4 + C, N]`, channel-major: per anchor
 * cx, cy, w, h in input pixels, then C class scores (sigmoided, no objectness).
 */
export const yolov8: DetectionDecoder<Yolov8Output> = {
  name: "yolov8",
  layout: "[B, 4+C, N]: cx, cy, w, h in input pixels, then C class scores (Ultralytics YOLOv8/YOLO11)",
  roles: [{ name: "output" }],
  schema: SCHEMA,
  stridesDivideInput: true,

  check(outputs, g, o) {
    const out = oneDeclared(outputs, "output");
    if (!out) return [];
    const problems: string[] = [];
    const dims = dimsOf(out, 3, problems, "yolov8 [B, 4+C, N]");
    if (!dims) return problems;
    const [, ch, n] = dims;
    if (ch !== undefined) {
      const p = perBoxProblem(ch, "4", 4, g.numClasses);
      if (p) problems.push(p);
    }
    if (n !== undefined && o.strides) {
      const p = anchorProblem(n, o.strides, g);
      if (p) problems.push(p);
    }
    return problems;
  },

  recognise(f) {
    if (f.outputs.length !== 1) return undefined;
    const out = f.outputs[0]!;
    const [b, ch, n] = out.shape;
    if (out.shape.length !== 3 || typeof ch !== "number" || ch < 5 || b === 0) return undefined;
    if (typeof n !== "number") {
      // Exported with dynamic axes: the anchor count follows the input, the channels are fixed.
      return {
        output: { decoder: "yolov8", name: out.name },
        numClasses: ch - 4,
        reason: `one output ${out.name} [${out.shape.join(", ")}]: ${ch} = 4 + ${ch - 4} channels first, then a dynamic number of anchors`,
      };
    }
    if (ch >= n) return undefined;
    const strides = stridesFor(n, f.inputWidth, f.inputHeight, f.maxStride !== undefined ? { maxStride: f.maxStride } : {});
    if (!strides) return undefined;
    return {
      output: { decoder: "yolov8", name: out.name, strides },
      numClasses: ch - 4,
      reason: `one output ${out.name} [${out.shape.join(", ")}]: ${ch} = 4 + ${ch - 4} channels first, then ${n} anchors = the stride ${strides.join("/")} grid`,
    };
  },

  decode(t, b, d) {
    const out = one(t, "output");
    const [, ch, n] = runDims(out, 3, "yolov8");
    if (ch !== 4 + d.numClasses) throw new Error(perBoxProblem(ch!, "4", 4, d.numClasses));
    const data = out.data;
    const base = b * ch * n!;
    const dets: Detection[] = [];
    for (let i = 0; i < n!; i++) {
      const { cls, score } = bestClass(data, base + 4 * n! + i, n!, d);
      if (cls < 0) continue;
      pushCentre(dets, data[base + i]!, data[base + n! + i]!, data[base + 2 * n! + i]!, data[base + 3 * n! + i]!, score, cls);
    }
    return dets;
  },
};
