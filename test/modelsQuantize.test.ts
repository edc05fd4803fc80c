import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { addModel } from "../runtime/detect/addModel.js";
import type { DetectionManifest } from "../runtime/detect/detectionManifest.js";
import { loadDetectionManifest } from "../runtime/detect/detectionManifest.js";
import { agreement, calibrate, rangesOf } from "../runtime/detect/quantize.js";
import { verifySha256 } from "../runtime/inference/manifest.js";
import { encodeModel, makeNode, makeTensor, readOnnxFile, tensorValues, writeOnnxFile, attr } from "../runtime/onnx/index.js";
import { activationParams, quantizeQdq } from "../runtime/onnx/qdq.js";
import { DataType, type OnnxModel, type ValueInfo } from "../runtime/onnx/types.js";
import { runCli } from "./helpers/cli.js";
import { rng } from "./helpers/onnxFixtures.js";
import { sharedFile } from "./helpers/sharedData.js";

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(path.join(tmpdir(), "cityedge-quantize-test-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const W = 16;
const H = 16;

function vi(name: string, shape: number[]): ValueInfo {
  return { name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: shape.map((d) => ({ dimValue: d })) } } }, metadataProps: [] };
}

/** Conv → SiLU (Sigmoid × Mul) → Conv → Add → Reshape → MatMul: a small float graph with every operator kind quantized. */
function smallModel(): OnnxModel {
  const r = rng(7);
  const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => (r() - 0.5) * s);
  return {
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    metadataProps: [],
    graph: {
      name: "small",
      input: [vi("images", [1, 3, H, W])],
      output: [vi("out", [1, 4, 6])],
      initializer: [
        makeTensor("w1", DataType.FLOAT, [8, 3, 3, 3], rand(8 * 27, 0.5)),
        makeTensor("b1", DataType.FLOAT, [8], rand(8, 0.2)),
        makeTensor("w2", DataType.FLOAT, [8, 8, 1, 1], rand(64, 0.6)),
        makeTensor("b2", DataType.FLOAT, [8], rand(8, 0.2)),
        makeTensor("shape", DataType.INT64, [3], new BigInt64Array([1n, 4n, 512n])),
        makeTensor("wm", DataType.FLOAT, [512, 6], rand(512 * 6, 0.1)),
      ],
      node: [
        makeNode("Conv", ["images", "w1", "b1"], ["c1"], "conv1", [attr.ints("pads", [1, 1, 1, 1]), attr.ints("kernel_shape", [3, 3])]),
        makeNode("Sigmoid", ["c1"], ["s1"], "sig1"),
        makeNode("Mul", ["c1", "s1"], ["m1"], "mul1"),
        makeNode("Conv", ["m1", "w2", "b2"], ["c2"], "conv2"),
        makeNode("Add", ["c2", "m1"], ["a2"], "add2"),
        makeNode("Reshape", ["a2", "shape"], ["r2"], "reshape2"),
        makeNode("MatMul", ["r2", "wm"], ["out"], "matmul3"),
      ],
      sparseInitializer: [],
      valueInfo: [],
      metadataProps: [],
    },
  };
}

const INPUT = {
  name: "images",
  layout: "NCHW" as const,
  width: W,
  height: H,
  color: "rgb" as const,
  scale: 1 / 255,
  mean: [0, 0, 0] as [number, number, number],
  std: [1, 1, 1] as [number, number, number],
  letterbox: "top-left" as const,
  letterbox_pad: 114,
};
const manifest = { id: "small", input: INPUT } as unknown as DetectionManifest;

function frames(seed: number, n: number) {
  const r = rng(seed);
  return Array.from({ length: n }, () => ({
    width: W,
    height: H,
    format: "rgb24" as const,
    data: Buffer.from(Uint8Array.from({ length: W * H * 3 }, () => Math.floor(r() * 256))),
  }));
}

async function calibrated(dir: string) {
  const file = path.join(dir, "small.onnx");
  writeOnnxFile(file, smallModel());
  const hists = await calibrate(file, manifest, frames(1, 6), { threads: 1 });
  return { file, ranges: rangesOf(hists, { method: "mse", percentile: 99.99, scheme: "s8" }) };
}

describe("QDQ graph", () => {
  it("quantizes every Conv and MatMul: int8 weights, zero point 0 for the symmetric scheme, uint8 activations for the CPU one", async () => {
    const { ranges } = await calibrated(tmp());
    for (const scheme of ["s8", "u8"] as const) {
      const { model, summary } = quantizeQdq(smallModel(), { scheme, ranges });
      expect(summary.skipped).toEqual([]);
      const g = model.graph;
      const init = new Map(g.initializer.map((t) => [t.name, t]));
      const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
      const macs = g.node.filter((n) => ["Conv", "MatMul", "Gemm"].includes(n.opType ?? ""));
      expect(macs.length).toBe(3);
      for (const n of macs) {
        // The data input and the weights each come from a DequantizeLinear; the weights are int8, zero point 0.
        for (const x of n.input.slice(0, 2)) expect(producer.get(x)?.opType, `${n.name} input ${x}`).toBe("DequantizeLinear");
        const wdq = producer.get(n.input[1]!)!;
        expect(init.get(wdq.input[0])?.dataType).toBe(DataType.INT8);
        expect([...tensorValues(init.get(wdq.input[2])!)].every((v) => v === 0)).toBe(true);
        if (n.opType === "Conv") expect(init.get(wdq.input[1])?.dims).toEqual([8]);
        const xdq = producer.get(n.input[0]!)!;
        const zp = init.get(xdq.input[2])!;
        expect(zp.dataType).toBe(scheme === "s8" ? DataType.INT8 : DataType.UINT8);
        if (scheme === "s8") expect(tensorValues(zp)[0]).toBe(0);
      }
      // Every QuantizeLinear of the symmetric scheme has zero point 0.
      for (const q of g.node.filter((n) => n.opType === "QuantizeLinear")) {
        const zp = init.get(q.input[2])!;
        expect(zp.dataType).toBe(scheme === "s8" ? DataType.INT8 : DataType.UINT8);
        if (scheme === "s8") expect(tensorValues(zp)[0]).toBe(0);
      }
      // The SiLU and Add between the convolutions are in QDQ too.
      for (const t of ["c1", "s1", "m1", "c2", "a2"])
        expect(
          g.node.some((n) => n.opType === "QuantizeLinear" && n.input[0] === t),
          t,
        ).toBe(true);
    }
  });

  it("runs in onnxruntime close to the float model, in both schemes", async () => {
    const dir = tmp();
    const { file, ranges } = await calibrated(dir);
    const x = new Float32Array(3 * W * H).map((_, i) => ((i * 37) % 255) / 255);
    const run = async (f: string) =>
      (await (await ort.InferenceSession.create(f)).run({ images: new ort.Tensor("float32", x, [1, 3, H, W]) })).out!.data as Float32Array;
    const a = await run(file);
    for (const scheme of ["u8", "s8"] as const) {
      const q = path.join(dir, `${scheme}.onnx`);
      writeOnnxFile(q, quantizeQdq(readOnnxFile(file), { scheme, ranges }).model);
      const b = await run(q);
      let num = 0;
      let den = 0;
      for (let i = 0; i < a.length; i++) {
        num += (a[i]! - b[i]!) ** 2;
        den += a[i]! ** 2;
      }
      expect(Math.sqrt(num / den), scheme).toBeLessThan(0.05);
    }
  });

  it("calibration is deterministic: the same frames give the same bytes", async () => {
    const one = await calibrated(tmp());
    const two = await calibrated(tmp());
    const bytes = (r: typeof one) => encodeModel(quantizeQdq(smallModel(), { scheme: "s8", ranges: r.ranges }).model);
    expect(Buffer.from(bytes(one)).equals(Buffer.from(bytes(two)))).toBe(true);
    const other = rangesOf(await calibrate(one.file, manifest, frames(2, 6), { threads: 1 }), { method: "mse", percentile: 99.99, scheme: "s8" });
    expect(Buffer.from(encodeModel(quantizeQdq(smallModel(), { scheme: "s8", ranges: other }).model)).equals(Buffer.from(bytes(one)))).toBe(false);
  });

  it("activation parameters: symmetric has zero point 0; asymmetric holds 0 exactly", () => {
    expect(activationParams({ min: -2, max: 1 }, "s8")).toEqual({ scale: 2 / 127, zeroPoint: 0 });
    const u = activationParams({ min: -1, max: 3 }, "u8");
    expect(u.scale).toBeCloseTo(4 / 255);
    expect(u.zeroPoint).toBe(64);
  });

  it("agreement matches by class and IoU 0.5", () => {
    const box = (x: number, c = 0) => ({ x1: x, y1: 0, x2: x + 10, y2: 10, score: 0.9, class_id: c });
    const a = agreement([[box(0), box(100)]], [[box(1), box(100, 1), box(300)]]);
    expect(a).toEqual({ recall: 0.5, precision: 1 / 3, reference: 2, candidate: 3, matched: 1 });
  });
});

const yolox = sharedFile("models/yolox_nano.onnx");
const clip = sharedFile("video/street-traffic-640x352.mp4");

describe.skipIf(!yolox || !clip)("models quantize on YOLOX-Nano and the real clip", () => {
  it("writes both variants, enables the one above the threshold and refuses the one below, saying why", async () => {
    const dir = tmp();
    const added = await addModel(yolox!, { id: "yolox_nano", out: dir });
    // Threshold between the two variants' agreement on these frames (docs/benchmarks.md has the figures).
    const r = await runCli([
      "models",
      "quantize",
      added.manifestFile,
      "--calibrate",
      clip!,
      "--frames",
      "8",
      "--holdout",
      "8",
      "--min-agreement",
      "0.86",
      "--json",
    ]);
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(65);
    const out = JSON.parse(r.stdout) as {
      variants: { variant: string; enabled: boolean; recall: number; precision: number; reason?: string; fused_ops: Record<string, number> }[];
    };
    const byName = Object.fromEntries(out.variants.map((v) => [v.variant, v]));
    expect(byName.int8!.enabled).toBe(true);
    expect(byName.int8!.fused_ops.QLinearConv).toBeGreaterThan(90);
    expect(byName.int8_sym!.enabled).toBe(false);
    expect(byName.int8_sym!.reason).toMatch(/below --min-agreement 0.86/);
    expect(r.stderr).toMatch(/yolox_nano int8_sym not enabled: agreement with fp32 on 8 held-out frames/);
    const m = loadDetectionManifest(added.manifestFile);
    expect(Object.keys(m.variants).sort()).toEqual(["fp32", "int8"]);
    await verifySha256(m, "int8");
    const raw = JSON.parse(readFileSync(added.manifestFile, "utf8")) as {
      quantization: Record<string, { enabled: boolean; calibration: { frames: number } }>;
    };
    expect(raw.quantization.int8_sym!.enabled).toBe(false);
    expect(raw.quantization.int8!.calibration.frames).toBe(8);
  }, 180_000);
});
