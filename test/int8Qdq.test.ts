import { execFileSync } from "node:child_process";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import type { BindingInfo } from "../runtime/inference/binding.js";
import { loadDetectionManifest } from "../runtime/detect/detectionManifest.js";
import { createSession } from "../runtime/inference/session.js";
import { captureLogger } from "./helpers/detectModels.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

/**
 * The vehicles model's INT8 files, read node by node (models/tools/qdq_report.py, with Debian's
 * python3-onnx): the symmetric one must be what TensorRT's explicit quantization imports, the
 * CPU one is what onnxruntime's CPU kernels run fastest (and TensorRT rejects).
 */
interface QdqNode {
  op: "QuantizeLinear" | "DequantizeLinear";
  name: string;
  constant_input: boolean;
  zero_point_type: string | null;
  zero_points_all_zero: boolean;
  scale_elements: number | null;
  axis: number | null;
  readers: string[];
}
const DIR = path.join(REPO_ROOT, "models/vehicles");
const files = ["vehicles.int8_sym.onnx", "vehicles.int8.onnx", "vehicles.fp32.onnx", "vehicles.fp16.onnx"].map((f) => path.join(DIR, f));
const report = JSON.parse(
  execFileSync("/usr/bin/python3", [path.join(REPO_ROOT, "models/tools/qdq_report.py"), ...files], { encoding: "utf8" }),
) as Record<string, QdqNode[]>;
const [sym, cpu, fp32, fp16] = files.map((f) => report[f]!) as [QdqNode[], QdqNode[], QdqNode[], QdqNode[]];

describe("vehicles.int8_sym.onnx: TensorRT-valid symmetric INT8", () => {
  it("has int8 zero points, all 0, on every QuantizeLinear and DequantizeLinear", () => {
    expect(sym.length).toBeGreaterThan(0);
    for (const n of sym)
      expect({ name: n.name, type: n.zero_point_type, zero: n.zero_points_all_zero }).toEqual({ name: n.name, type: "int8", zero: true });
  });

  it("quantizes weights per output channel (axis 0) and activations per tensor, and every conv's weight", () => {
    const weights = sym.filter((n) => n.op === "QuantizeLinear" && n.constant_input);
    const activations = sym.filter((n) => n.op === "QuantizeLinear" && !n.constant_input);
    for (const w of weights)
      expect({ name: w.name, axis: w.axis, perChannel: (w.scale_elements ?? 0) > 1 }).toEqual({ name: w.name, axis: 0, perChannel: true });
    for (const a of activations) expect({ name: a.name, scale: a.scale_elements }).toEqual({ name: a.name, scale: 1 });
    // Every Q feeds its DQ, and the 31 convolutions of the model each read a dequantized weight.
    for (const q of sym.filter((n) => n.op === "QuantizeLinear")) expect(q.readers).toEqual(["DequantizeLinear"]);
    expect(weights).toHaveLength(31);
    expect(activations.length).toBeGreaterThanOrEqual(31);
  });
});

describe("the other shipped files", () => {
  it("vehicles.int8.onnx is the CPU-tuned QDQ: uint8 activations (not for TensorRT), int8 weights per channel", () => {
    const acts = cpu.filter((n) => !n.constant_input && n.scale_elements === 1);
    expect(acts.length).toBeGreaterThan(0);
    expect(new Set(acts.map((n) => n.zero_point_type))).toEqual(new Set(["uint8"]));
    const weights = cpu.filter((n) => n.op === "DequantizeLinear" && (n.scale_elements ?? 0) > 1);
    expect(new Set(weights.map((n) => n.zero_point_type))).toEqual(new Set(["int8"]));
  });

  it("fp32 and fp16 have no quantization at all", () => {
    expect([fp32.length, fp16.length]).toEqual([0, 0]);
  });
});

describe("auto on the shipped manifest", () => {
  const manifest = loadDetectionManifest(path.join(DIR, "manifest.json"));
  const patched: BindingInfo = { file: "/x.node", version: "1.23.2", backends: [], patched: true, honoured: ["tensorrt", "cuda"] };
  const pretend = async (file: string, o: ort.InferenceSession.SessionOptions) =>
    ort.InferenceSession.create(file, { ...o, executionProviders: ["cpu"] });

  it("picks the symmetric int8 on TensorRT, fp16 on CUDA and the fastest measured on the CPU", async () => {
    const { log } = captureLogger();
    const picked: Record<string, string> = {};
    for (const provider of ["tensorrt", "cuda", "cpu"] as const) {
      const s = await createSession(manifest, {
        providers: [provider],
        threads: 1,
        variant: "auto",
        log,
        binding: patched,
        gpuInfo: { tensorrt: null, tensorrtLibrary: null, cuda: null, cudnn: null, gpus: [], jetson: null },
        ...(provider === "cpu" ? {} : { create: pretend }),
      });
      picked[provider] = s.variant;
      await s.release();
    }
    const fastest = Object.entries(manifest.variants).sort((a, b) => a[1].cpu_ms! - b[1].cpu_ms!)[0]![0];
    expect(fastest).toBe("int8");
    expect(picked).toEqual({ tensorrt: "int8_sym", cuda: "fp16", cpu: fastest });
  });
});
