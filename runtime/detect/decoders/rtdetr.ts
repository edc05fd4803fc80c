import { z } from "zod";
import type { Detection } from "../types.js";
import {
  BASE_OUTPUT,
  bestClass,
  dimsOf,
  one,
  oneDeclared,
  perBoxProblem,
  pushCentre,
  runDims,
  SCORE_ACTIVATION,
  stridesFor,
  type DetectionDecoder,
} from "./common.js";

const SCHEMA = z.strictObject({
  decoder: z.literal("rtdetr"),
  ...BASE_OUTPUT,
  score_activation: SCORE_ACTIVATION,
});
export type RtdetrOutput = z.output<typeof SCHEMA>;

/**
 * DETR-style query outputs: `[B, K, 4 + C]` rows of cx, cy, w, h as fractions of the input size,
 * then C class scores (Ultralytics RT-DETR). One box per query: no NMS needed, none harmful.
 */
export const rtdetr: DetectionDecoder<RtdetrOutput> = {
  name: "rtdetr",
  layout: "[B, K, 4+C]: cx, cy, w, h normalized 0..1, then C class scores, one row per query (RT-DETR)",
  roles: [{ name: "output" }],
  schema: SCHEMA,

  check(outputs, g) {
    const out = oneDeclared(outputs, "output");
    if (!out) return [];
    const problems: string[] = [];
    const dims = dimsOf(out, 3, problems, "rtdetr [B, K, 4+C]");
    const p = dims?.[2] !== undefined ? perBoxProblem(dims[2], "4", 4, g.numClasses) : undefined;
    if (p) problems.push(p);
    return problems;
  },

  recognise(f) {
    if (f.outputs.length !== 1) return undefined;
    const out = f.outputs[0]!;
    const [, k, width] = out.shape;
    if (out.shape.length !== 3 || typeof k !== "number" || typeof width !== "number" || width < 5 || width >= k || width === 6) return undefined;
    // Rows on an anchor grid are a YOLO head's.
    const grid =
      stridesFor(k, f.inputWidth, f.inputHeight) ||
      stridesFor(k, f.inputWidth, f.inputHeight, { perCell: 3 }) ||
      stridesFor(k, f.inputWidth, f.inputHeight, { round: "ceil", sets: [[8, 16, 32, 64]] });
    if (grid) return undefined;
    return {
      output: { decoder: "rtdetr", name: out.name, score_activation: "none" },
      numClasses: width - 4,
      reason: `one output ${out.name} [${out.shape.join(", ")}]: ${k} query rows (not an anchor grid) of ${width} = 4 + ${width - 4} classes`,
    };
  },

  decode(t, b, d, o) {
    const out = one(t, "output");
    const [, k, width] = runDims(out, 3, "rtdetr");
    if (width !== 4 + d.numClasses) throw new Error(perBoxProblem(width!, "4", 4, d.numClasses));
    const x = out.data;
    const dets: Detection[] = [];
    const logits = o.score_activation === "sigmoid";
    for (let i = 0; i < k!; i++) {
      const r = (b * k! + i) * width;
      const { cls, score } = bestClass(x, r + 4, 1, d, 1, logits);
      if (cls < 0) continue;
      pushCentre(dets, x[r]! * d.inputWidth, x[r + 1]! * d.inputHeight, x[r + 2]! * d.inputWidth, x[r + 3]! * d.inputHeight, score, cls);
    }
    return dets;
  },
};
