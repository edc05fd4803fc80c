import { z } from "zod";
import type { Detection } from "../types.js";
import { BASE_OUTPUT, dimsOf, fixed, shapeText, type DeclaredOutput, type DetectionDecoder, type Tensor } from "./common.js";

const SCHEMA = z.strictObject({
  decoder: z.literal("ssd"),
  ...BASE_OUTPUT,
  box_order: z.enum(["yxyx", "xyxy"]).default("yxyx").describe("Corner order of a box: TensorFlow's ymin, xmin, ymax, xmax, or x1, y1, x2, y2"),
  normalized: z.boolean().default(true).describe("Boxes are 0..1 of the input size (TensorFlow) instead of input pixels"),
  class_offset: z.number().int().min(-1).max(1).default(0).describe("Subtracted from a class id to give the label index (1 for 1-based ids)"),
});
export type SsdOutput = z.output<typeof SCHEMA>;

function firstRows(t: Tensor): number {
  return t.dims.length >= 2 ? t.dims[1]! : t.dims[0]!;
}

/**
 * TensorFlow Object Detection API and other SSD-style exports with NMS in the graph: `boxes`
 * `[B, K, 4]`, `scores` `[B, K]`, `classes` `[B, K]` (ids, float or int) and optionally
 * `count` `[B]`, the valid rows of each frame.
 */
export const ssd: DetectionDecoder<SsdOutput> = {
  name: "ssd",
  layout: "boxes [B, K, 4], scores [B, K], classes [B, K] and count [B], NMS done in the graph (SSD, TensorFlow Object Detection API)",
  roles: [{ name: "boxes" }, { name: "scores" }, { name: "classes" }, { name: "count", optional: true }],
  schema: SCHEMA,
  nmsInGraph: true,

  check(outputs) {
    const problems: string[] = [];
    const boxes = outputs.boxes?.[0];
    const scores = outputs.scores?.[0];
    const classes = outputs.classes?.[0];
    const bd = boxes ? dimsOf(boxes, 3, problems, "ssd boxes [B, K, 4]") : undefined;
    if (bd?.[2] !== undefined && bd[2] !== 4) problems.push(`output "${boxes!.name}" is ${shapeText(boxes!.shape)}; boxes need 4 values each`);
    const k = bd?.[1];
    for (const t of [scores, classes]) {
      if (!t) continue;
      const dims = dimsOf(t, 2, problems, "ssd scores and classes [B, K]");
      if (dims?.[1] !== undefined && k !== undefined && dims[1] !== k) {
        problems.push(`output "${t.name}" has ${dims[1]} rows; boxes "${boxes!.name}" has ${k}`);
      }
    }
    return problems;
  },

  recognise(f) {
    const byRank = (r: number) => f.outputs.filter((o) => o.shape.length === r);
    const boxes = byRank(3).filter((o) => fixed(o.shape[2]) === 4);
    const pairs = byRank(2);
    const counts = byRank(1);
    if (f.outputs.length < 3 || f.outputs.length > 4 || boxes.length !== 1 || pairs.length !== 2 || counts.length > 1) return undefined;
    if (f.outputs.length !== 3 + counts.length) return undefined;
    const named = (re: RegExp) => pairs.find((o) => re.test(o.name));
    let scores = named(/score/i);
    let classes = named(/class|label/i);
    // Without telling names, integer ids are the classes.
    if (!scores || !classes || scores === classes) {
      const ints = pairs.filter((o: DeclaredOutput) => o.type !== undefined && /^u?int/.test(o.type));
      if (ints.length !== 1) return undefined;
      classes = ints[0]!;
      scores = pairs.find((o) => o !== classes)!;
    }
    const tensors: Record<string, string> = { boxes: boxes[0]!.name, scores: scores.name, classes: classes.name };
    if (counts[0]) tensors.count = counts[0].name;
    return {
      output: { decoder: "ssd", tensors, box_order: "yxyx", normalized: true, class_offset: 0 },
      reason: `outputs ${Object.entries(tensors)
        .map(([role, name]) => `${role} ${name}`)
        .join(", ")}: boxes, scores and class ids after NMS in the graph`,
    };
  },

  decode(t, b, d, o) {
    const boxes = t.boxes?.[0];
    const scores = t.scores?.[0];
    const classes = t.classes?.[0];
    if (!boxes || !scores || !classes) throw new Error("ssd needs the boxes, scores and classes outputs");
    const k = firstRows(boxes);
    let valid = k;
    const count = t.count?.[0];
    if (count) valid = Math.max(0, Math.min(k, Math.round(count.data[count.dims.length === 0 ? 0 : b]!)));
    const sx = o.normalized ? d.inputWidth : 1;
    const sy = o.normalized ? d.inputHeight : 1;
    const yx = o.box_order === "yxyx";
    const dets: Detection[] = [];
    for (let i = 0; i < valid; i++) {
      const score = scores.data[b * k + i]!;
      const cls = Math.round(classes.data[b * k + i]!) - o.class_offset;
      if (score < d.scoreThreshold || cls < 0 || cls >= d.numClasses || (d.allowed !== undefined && d.allowed[cls] !== 1)) continue;
      const r = (b * k + i) * 4;
      const v = boxes.data;
      const [x1, y1, x2, y2] = yx ? [v[r + 1]!, v[r]!, v[r + 3]!, v[r + 2]!] : [v[r]!, v[r + 1]!, v[r + 2]!, v[r + 3]!];
      dets.push({ x1: x1 * sx, y1: y1 * sy, x2: x2 * sx, y2: y2 * sy, score, class_id: cls });
    }
    return dets;
  },
};
