import { z } from "zod";
import type { Detection } from "../types.js";
import {
  BASE_OUTPUT,
  dimsOf,
  gridCells,
  perBoxProblem,
  runDims,
  SCORE_ACTIVATION,
  shapeText,
  STRIDES,
  type DeclaredOutput,
  type DetectionDecoder,
} from "./common.js";
import { bins, GFL_KEYS, gflBox } from "./gfl.js";

const SCHEMA = z.strictObject({
  decoder: z.literal("nanodet"),
  ...BASE_OUTPUT,
  strides: STRIDES.default([8, 16, 32]).describe("The head's strides, in the order of the `cls` and `reg` tensors"),
  ...GFL_KEYS,
  center_offset: z.number().min(0).max(1).default(0.5).describe("Where a cell's prior centre sits, in cells (NanoDet: 0.5)"),
  score_activation: SCORE_ACTIVATION,
});
export type NanodetOutput = z.output<typeof SCHEMA>;

/** Which stride a head level of `cells` anchors has (NanoDet sizes its feature maps with ceil). */
function strideOf(cells: number, width: number, height: number): number | undefined {
  for (const s of [4, 8, 16, 32, 64, 128]) if (gridCells(width, height, s, "ceil") === cells) return s;
  return undefined;
}

const CLS_NAME = /cls|score|conf/i;
const REG_NAME = /dis|reg|box|bbox/i;

/**
 * NanoDet and other GFL heads exported per level: for each stride a class tensor `[B, HW, C]`
 * (sigmoided) and a box tensor `[B, HW, 4 * (reg_max + 1)]` holding, per side (left, top, right,
 * bottom), a distribution over distances 0..reg_max in strides (or `[B, HW, 4]`: the distances).
 */
export const nanodet: DetectionDecoder<NanodetOutput> = {
  name: "nanodet",
  layout: "per stride cls [B, HW, C] and reg [B, HW, 4*(reg_max+1)] distance distributions (NanoDet, GFL heads)",
  roles: [
    { name: "cls", perStride: true },
    { name: "reg", perStride: true },
  ],
  schema: SCHEMA,

  check(outputs, g, o) {
    const problems: string[] = [];
    const cls = outputs.cls ?? [];
    const reg = outputs.reg ?? [];
    for (const [role, list] of [
      ["cls", cls],
      ["reg", reg],
    ] as const) {
      if (list.length !== o.strides.length) {
        problems.push(`output.tensors.${role} names ${list.length} tensors; strides [${o.strides.join(", ")}] need one per stride`);
      }
    }
    o.strides.forEach((s, i) => {
      const cells = gridCells(g.inputWidth, g.inputHeight, s, "ceil");
      const check = (out: DeclaredOutput | undefined, what: "classes" | "distances") => {
        if (!out) return;
        const dims = dimsOf(out, 3, problems, `a nanodet ${what} tensor [B, HW, ${what === "classes" ? "C" : "4*(reg_max+1)"}]`);
        if (!dims) return;
        const [, hw, width] = dims;
        if (hw !== undefined && hw !== cells) {
          problems.push(`output "${out.name}" has ${hw} cells; stride ${s} on ${g.inputWidth}x${g.inputHeight} gives ${cells}`);
        }
        if (width === undefined) return;
        if (what === "classes") {
          const p = perBoxProblem(width, "0", 0, g.numClasses);
          if (p) problems.push(`output "${out.name}": ${p}`);
        } else if (width !== 4 && width !== 4 * (o.reg_max + 1)) {
          problems.push(`output "${out.name}" is ${shapeText(out.shape)}; reg_max ${o.reg_max} needs ${4 * (o.reg_max + 1)} values per box (or 4)`);
        }
      };
      check(cls[i], "classes");
      check(reg[i], "distances");
    });
    return problems;
  },

  recognise(f) {
    const n = f.outputs.length;
    if (n < 4 || n % 2 !== 0 || f.outputs.some((o) => o.shape.length !== 3 || typeof o.shape[1] !== "number" || typeof o.shape[2] !== "number")) {
      return undefined;
    }
    const levels = new Map<number, DeclaredOutput[]>();
    for (const o of f.outputs) {
      const s = strideOf(o.shape[1] as number, f.inputWidth, f.inputHeight);
      if (s === undefined) return undefined;
      levels.set(s, [...(levels.get(s) ?? []), o]);
    }
    if (levels.size !== n / 2 || [...levels.values()].some((l) => l.length !== 2)) return undefined;
    const strides = [...levels.keys()].sort((a, b) => a - b);
    const cls: string[] = [];
    const reg: string[] = [];
    let numClasses: number | undefined;
    let regWidth: number | undefined;
    for (const s of strides) {
      const [a, b] = levels.get(s)!;
      // By name first (cls_pred_stride_8 / dis_pred_stride_8), else the distances are the 4 * k wide one.
      let pair: [DeclaredOutput, DeclaredOutput] | undefined;
      if (CLS_NAME.test(a!.name) && REG_NAME.test(b!.name)) pair = [a!, b!];
      else if (CLS_NAME.test(b!.name) && REG_NAME.test(a!.name)) pair = [b!, a!];
      else {
        const wa = a!.shape[2] as number;
        const wb = b!.shape[2] as number;
        const looksReg = (w: number) => w === 4 || (w % 4 === 0 && w / 4 - 1 >= 3 && w / 4 - 1 <= 16);
        if (looksReg(wb) && !looksReg(wa)) pair = [a!, b!];
        else if (looksReg(wa) && !looksReg(wb)) pair = [b!, a!];
      }
      if (!pair) return undefined;
      cls.push(pair[0].name);
      reg.push(pair[1].name);
      numClasses ??= pair[0].shape[2] as number;
      regWidth ??= pair[1].shape[2] as number;
      if (numClasses !== pair[0].shape[2] || regWidth !== pair[1].shape[2]) return undefined;
    }
    const regMax = regWidth === 4 ? 7 : regWidth! / 4 - 1;
    return {
      output: { decoder: "nanodet", tensors: { cls, reg }, strides, reg_max: regMax, center_offset: 0.5, score_activation: "none" },
      numClasses: numClasses!,
      reason: `${n} outputs, a class tensor (${numClasses} classes) and a box tensor (${regWidth} = ${regWidth === 4 ? "4 distances" : `4 x ${regMax + 1} bins`}) per stride ${strides.join("/")}`,
    };
  },

  decode(t, b, d, o) {
    const cls = t.cls ?? [];
    const reg = t.reg ?? [];
    if (cls.length !== o.strides.length || reg.length !== o.strides.length) {
      throw new Error(`nanodet needs a cls and a reg tensor per stride (${o.strides.length}), got ${cls.length} and ${reg.length}`);
    }
    const dets: Detection[] = [];
    const logits = o.score_activation === "sigmoid";
    o.strides.forEach((s, level) => {
      const c = cls[level]!;
      const r = reg[level]!;
      const [, hw, nc] = runDims(c, 3, "nanodet", "cls");
      const [, hw2, rw] = runDims(r, 3, "nanodet", "reg");
      if (nc !== d.numClasses) throw new Error(perBoxProblem(nc!, "0", 0, d.numClasses));
      const gw = Math.ceil(d.inputWidth / s);
      if (hw !== hw2 || hw !== gw * Math.ceil(d.inputHeight / s)) {
        throw new Error(
          `nanodet stride ${s}: cls has ${hw} cells, reg ${hw2}; ${d.inputWidth}x${d.inputHeight} gives ${gridCells(d.inputWidth, d.inputHeight, s, "ceil")}`,
        );
      }
      const n = bins(rw!, o.reg_max);
      for (let i = 0; i < hw; i++) {
        const cx = ((i % gw) + o.center_offset) * s;
        const cy = (Math.floor(i / gw) + o.center_offset) * s;
        gflBox(dets, c.data, (b * hw + i) * nc, r.data, (b * hw + i) * rw!, n, cx, cy, s, d, logits);
      }
    });
    return dets;
  },
};
