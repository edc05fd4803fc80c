import { z } from "zod";
import type { Detection } from "../types.js";
import {
  anchorGrid,
  anchorProblem,
  BASE_OUTPUT,
  dimsOf,
  gridCount,
  one,
  oneDeclared,
  perBoxProblem,
  runDims,
  SCORE_ACTIVATION,
  STRIDES,
  stridesFor,
  type DetectionDecoder,
} from "./common.js";
import { bins, GFL_KEYS, gflBox } from "./gfl.js";

const SCHEMA = z.strictObject({
  decoder: z.literal("nanodet-plus"),
  ...BASE_OUTPUT,
  strides: STRIDES.default([8, 16, 32, 64]).describe("The head's strides, in the order its levels are concatenated"),
  ...GFL_KEYS,
  center_offset: z.number().min(0).max(1).default(0).describe("Where a cell's prior centre sits, in cells (NanoDet-Plus: 0, the cell's corner)"),
  score_activation: SCORE_ACTIVATION,
});
export type NanodetPlusOutput = z.output<typeof SCHEMA>;

/**
 * NanoDet-Plus: one `[B, N, C + 4 * (reg_max + 1)]` output, levels concatenated stride by
 * stride (feature maps sized with ceil): C class scores (sigmoided), then per side a
 * distribution over distances 0..reg_max in strides.
 */
export const nanodetPlus: DetectionDecoder<NanodetPlusOutput> = {
  name: "nanodet-plus",
  layout: "[B, N, C + 4*(reg_max+1)]: C class scores, then 4 distance distributions, levels concatenated (NanoDet-Plus)",
  roles: [{ name: "output" }],
  schema: SCHEMA,

  check(outputs, g, o) {
    const out = oneDeclared(outputs, "output");
    if (!out) return [];
    const problems: string[] = [];
    const dims = dimsOf(out, 3, problems, "nanodet-plus [B, N, C + 4*(reg_max+1)]");
    if (!dims) return problems;
    const [, n, width] = dims;
    const reg = 4 * (o.reg_max + 1);
    if (width !== undefined) {
      const p = perBoxProblem(width, `${reg} distance bins`, reg, g.numClasses);
      if (p) problems.push(p);
    }
    if (n !== undefined) {
      const p = anchorProblem(n, o.strides, g, 1, "ceil");
      if (p) problems.push(p);
    }
    return problems;
  },

  recognise(f) {
    if (f.outputs.length !== 1) return undefined;
    const out = f.outputs[0]!;
    const [, n, width] = out.shape;
    if (out.shape.length !== 3 || typeof n !== "number" || typeof width !== "number" || width <= 32 || width >= n) return undefined;
    const strides = stridesFor(n, f.inputWidth, f.inputHeight, {
      round: "ceil",
      sets: [
        [8, 16, 32, 64],
        [8, 16, 32],
      ],
    });
    // Four levels (its default) are NanoDet-Plus's own: no YOLO head has a stride-64 level at these sizes and no objectness.
    if (!strides || (strides.length === 3 && gridCount(f.inputWidth, f.inputHeight, strides) === n)) return undefined;
    return {
      output: { decoder: "nanodet-plus", name: out.name, strides, reg_max: 7, center_offset: 0, score_activation: "none" },
      numClasses: width - 32,
      reason: `one output ${out.name} [${out.shape.join(", ")}]: ${n} rows = the stride ${strides.join("/")} grid (ceil), ${width} = ${width - 32} classes + 4 x 8 distance bins`,
    };
  },

  decode(t, b, d, o) {
    const out = one(t, "output");
    const [, n, width] = runDims(out, 3, "nanodet-plus");
    const reg = width! - d.numClasses;
    const k = bins(reg, o.reg_max);
    const grid = anchorGrid(d.inputWidth, d.inputHeight, o.strides, "ceil");
    if (n !== grid.length / 3) {
      throw new Error(anchorProblem(n!, o.strides, { inputWidth: d.inputWidth, inputHeight: d.inputHeight, numClasses: d.numClasses }, 1, "ceil"));
    }
    const dets: Detection[] = [];
    const logits = o.score_activation === "sigmoid";
    for (let i = 0; i < n; i++) {
      const s = grid[i * 3 + 2]!;
      const row = (b * n + i) * width!;
      gflBox(
        dets,
        out.data,
        row,
        out.data,
        row + d.numClasses,
        k,
        (grid[i * 3]! + o.center_offset) * s,
        (grid[i * 3 + 1]! + o.center_offset) * s,
        s,
        d,
        logits,
      );
    }
    return dets;
  },
};
