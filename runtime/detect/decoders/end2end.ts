import { z } from "zod";
import type { Detection } from "../types.js";
import { BASE_OUTPUT, dimsOf, one, oneDeclared, runDims, shapeText, stridesFor, type DetectionDecoder } from "./common.js";

const SCHEMA = z.strictObject({
  decoder: z.literal("end2end"),
  ...BASE_OUTPUT,
  normalized: z.boolean().default(false).describe("Boxes are 0..1 of the input size instead of input pixels"),
});
export type End2endOutput = z.output<typeof SCHEMA>;

/**
 * Exports with NMS in the graph: `[B, K, 6]` rows of x1, y1, x2, y2 (input pixels), score and
 * class id, best first, padded with zero scores (Ultralytics `nms=True`, YOLOv10, YOLO26).
 */
export const end2end: DetectionDecoder<End2endOutput> = {
  name: "end2end",
  layout: "[B, K, 6]: x1, y1, x2, y2 in input pixels, score, class id, NMS done in the graph (Ultralytics nms=True, YOLOv10)",
  roles: [{ name: "output" }],
  schema: SCHEMA,
  nmsInGraph: true,

  check(outputs) {
    const out = oneDeclared(outputs, "output");
    if (!out) return [];
    const problems: string[] = [];
    const dims = dimsOf(out, 3, problems, "end2end [B, K, 6]");
    if (dims?.[2] !== undefined && dims[2] !== 6) {
      problems.push(`output "${out.name}" is ${shapeText(out.shape)}; end2end rows hold 6 values (x1, y1, x2, y2, score, class), not ${dims[2]}`);
    }
    return problems;
  },

  recognise(f) {
    if (f.outputs.length !== 1) return undefined;
    const out = f.outputs[0]!;
    const [, k, six] = out.shape;
    if (out.shape.length !== 3 || six !== 6) return undefined;
    // A one-class YOLOX / YOLOv5 head is [B, N, 6] too; its N is a grid's.
    if (typeof k === "number" && (stridesFor(k, f.inputWidth, f.inputHeight) || stridesFor(k, f.inputWidth, f.inputHeight, { perCell: 3 })))
      return undefined;
    return {
      output: { decoder: "end2end", name: out.name },
      reason: `one output ${out.name} [${out.shape.join(", ")}]: ${String(k)} rows of 6 values (box, score, class id), no anchor grid: NMS is in the graph`,
    };
  },

  decode(t, b, d, o) {
    const out = one(t, "output");
    const [, k, six] = runDims(out, 3, "end2end");
    if (six !== 6) throw new Error(`end2end output rows hold ${six} values, not 6`);
    const sx = o.normalized ? d.inputWidth : 1;
    const sy = o.normalized ? d.inputHeight : 1;
    const x = out.data;
    const dets: Detection[] = [];
    for (let i = 0; i < k!; i++) {
      const r = (b * k! + i) * 6;
      const score = x[r + 4]!;
      const cls = Math.round(x[r + 5]!);
      if (score < d.scoreThreshold || cls < 0 || cls >= d.numClasses || (d.allowed !== undefined && d.allowed[cls] !== 1)) continue;
      dets.push({ x1: x[r]! * sx, y1: x[r + 1]! * sy, x2: x[r + 2]! * sx, y2: x[r + 3]! * sy, score, class_id: cls });
    }
    return dets;
  },
};
