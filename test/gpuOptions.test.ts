import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import YAML from "yaml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { LatestFrameSlot } from "../drivers/camera/frame.js";
import { loadConfig } from "../runtime/config/load.js";
import { DETECTION_SCHEMA } from "../runtime/config/sections/detection.js";
import { DetectorPart } from "../runtime/detect/detectorPart.js";
import { describeBinding, type BindingInfo } from "../runtime/inference/binding.js";
import { engineCacheKey, prepareEngineDir, type EngineKeyParts } from "../runtime/inference/engineCache.js";
import { probeGpu, type GpuInfo } from "../runtime/inference/gpuInfo.js";
import { loadManifest } from "../runtime/inference/manifest.js";
import { DEFAULT_GPU_SETTINGS, gpuSettingsOf } from "../runtime/inference/providerOptions.js";
import { createSession, cpuAutoOrder } from "../runtime/inference/session.js";
import type { MessageSink } from "../runtime/mqtt/sink.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { captureLogger, makeConstModel, sha256Of, writeManifest } from "./helpers/detectModels.js";
import { busInto } from "./helpers/bus.js";

/**
 * What reaches onnxruntime's binding for TensorRT and CUDA, from the config on. The GPU providers
 * cannot run here, so the binding is a stand-in that records the session options it is handed
 * (the patched binding passes exactly that object's keys to onnxruntime: scripts/onnxruntime/).
 */
let dir: string;
let model: string;

const PATCHED: BindingInfo = {
  file: "/opt/cityedge/app/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node",
  version: "1.23.2",
  backends: [
    { name: "cpu", bundled: true },
    { name: "cuda", bundled: false },
    { name: "tensorrt", bundled: false },
  ],
  patched: true,
  honoured: ["tensorrt", "cuda"],
};
const STOCK: BindingInfo = { ...PATCHED, patched: false, honoured: [] };
const ORIN: GpuInfo = {
  tensorrt: "10.3.0",
  tensorrtLibrary: "/usr/lib/aarch64-linux-gnu/libnvinfer.so.10.3.0",
  cuda: "12.6.68",
  cudnn: "9.3.0",
  gpus: [{ name: "NVIDIA Jetson Orin Nano Developer Kit", computeCapability: "8.7", source: "/proc/device-tree" }],
  jetson: { model: "NVIDIA Jetson Orin Nano Developer Kit", l4t: "R36.4.3" },
};

/** A `create` that records what the binding would receive and hands back a real CPU session. */
function recorder() {
  const seen: ort.InferenceSession.SessionOptions[] = [];
  const create = async (file: string, options: ort.InferenceSession.SessionOptions) => {
    seen.push(options);
    return ort.InferenceSession.create(file, { ...options, executionProviders: ["cpu"] });
  };
  return { seen, create };
}

function configWith(models: Record<string, unknown>[]) {
  const file = path.join(dir, `cfg-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    YAML.stringify({ device_id: "dev-1", data_dir: path.join(dir, "data"), mqtt: { url: "mqtt://127.0.0.1:1" }, broker: { enabled: false }, models }),
  );
  return loadConfig(file).config;
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-gpu-options-"));
  model = makeConstModel(dir, "batchy", { batch: "N", width: 32, height: 32, shape: [1, 6, 1], values: [10, 8, 8, 8, 0.9, 0.1] });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A manifest with an fp32 and a symmetric int8 variant (the same tiny file: only names matter here). */
function manifestWithVariants(name: string, variants: string[]) {
  const sha256 = sha256Of(model);
  return writeManifest(dir, name, model, "yolov8", { width: 32, height: 32 }, ["car", "person"], {
    variants: Object.fromEntries(variants.map((v) => [v, { file: path.basename(model), sha256 }])),
  });
}

describe("the options contract: config → what the binding receives", () => {
  it("hands TensorRT every setting of the config, with keyed engine and timing caches and a batch profile", async () => {
    const cfg = configWith([
      {
        id: "vehicles",
        manifest: "m.json",
        gpu_device: 0,
        tensorrt: { precision: "auto", workspace_mb: 512, builder_optimization_level: 4, dla_core: 1, cuda_graph: false },
      },
    ]);
    const cacheDir = path.join(dir, "data", "trt-cache", "vehicles");
    const m = loadManifest(manifestWithVariants("trt", ["fp32", "int8_sym"]));
    const { seen, create } = recorder();
    const { log, lines } = captureLogger();
    const s = await createSession(m, {
      providers: ["tensorrt"],
      threads: 1,
      variant: "auto",
      log,
      create,
      gpu: gpuSettingsOf(cfg.models[0]!, cacheDir),
      batch: { input: "images", max: 4 },
      binding: PATCHED,
      gpuInfo: ORIN,
    });
    expect(s.variant).toBe("int8_sym");
    const [engineDir] = readdirSync(cacheDir).filter((d) => /^[0-9a-f]{16}$/.test(d));
    const [timingDir] = readdirSync(cacheDir).filter((d) => d.startsWith("timing-"));
    expect(seen[0]!.executionProviders).toEqual([
      {
        name: "tensorrt",
        deviceId: 0,
        trt_fp16_enable: "1",
        trt_int8_enable: "1",
        trt_max_workspace_size: String(512 * 1024 * 1024),
        trt_builder_optimization_level: "4",
        trt_cuda_graph_enable: "0",
        trt_engine_cache_enable: "1",
        trt_engine_cache_path: path.join(cacheDir, engineDir!),
        trt_timing_cache_enable: "1",
        trt_timing_cache_path: path.join(cacheDir, timingDir!),
        trt_profile_min_shapes: "images:1x3x32x32",
        trt_profile_opt_shapes: "images:4x3x32x32",
        trt_profile_max_shapes: "images:4x3x32x32",
        trt_dla_enable: "1",
        trt_dla_core: "1",
      },
    ]);
    // The key file says what the engine was built for.
    const key = JSON.parse(readFileSync(path.join(cacheDir, engineDir!, "cityedge-engine-key.json"), "utf8")) as Record<string, unknown>;
    expect(key).toMatchObject({ variant: "int8_sym", sha256: sha256Of(model), fp16: true, int8: true, tensorrt: "10.3.0", onnxruntime: "1.23.2" });
    expect(key.gpu).toBe("0:NVIDIA Jetson Orin Nano Developer Kit sm 8.7");
    expect(s.setup.ignored).toBeNull();
    expect(lines().some((l) => String(l.msg).includes("options not honoured"))).toBe(false);
    await s.release();
  });

  it("uses the defaults when the config says nothing: fp16 from the fp32 file, caches on, builder level 3, 1 GiB workspace, no DLA", async () => {
    const cfg = configWith([{ id: "plain", manifest: "m.json" }]);
    const m = loadManifest(manifestWithVariants("plain", ["fp32"]));
    const { seen, create } = recorder();
    const { log } = captureLogger();
    const s = await createSession(m, {
      providers: ["tensorrt"],
      threads: 1,
      variant: "auto",
      log,
      create,
      gpu: gpuSettingsOf(cfg.models[0]!, path.join(dir, "plain-cache")),
      binding: PATCHED,
      gpuInfo: ORIN,
    });
    expect(seen[0]!.executionProviders![0]).toMatchObject({
      name: "tensorrt",
      trt_fp16_enable: "1",
      trt_int8_enable: "0",
      trt_max_workspace_size: String(1024 * 1024 * 1024),
      trt_builder_optimization_level: "3",
      trt_engine_cache_enable: "1",
      trt_timing_cache_enable: "1",
      trt_dla_enable: "0",
    });
    // No batch given: no profile (a fixed-shape model must not get one).
    expect(Object.keys(seen[0]!.executionProviders![0] as object).filter((k) => k.startsWith("trt_profile"))).toEqual([]);
    await s.release();
  });

  it("hands CUDA its device, cuDNN search and arena settings; fp16 is CUDA's first choice", async () => {
    const cfg = configWith([
      {
        id: "c",
        manifest: "m.json",
        gpu_device: 1,
        cuda: { cudnn_conv_algo_search: "exhaustive", arena_extend_strategy: "next_power_of_two", gpu_mem_limit_mb: 256 },
      },
    ]);
    const m = loadManifest(manifestWithVariants("cuda", ["fp32", "fp16"]));
    const { seen, create } = recorder();
    const { log } = captureLogger();
    const s = await createSession(m, {
      providers: ["cuda"],
      threads: 1,
      variant: "auto",
      log,
      create,
      gpu: gpuSettingsOf(cfg.models[0]!, path.join(dir, "unused")),
      binding: PATCHED,
    });
    expect(s.variant).toBe("fp16");
    expect(seen[0]!.executionProviders).toEqual([
      {
        name: "cuda",
        deviceId: 1,
        cudnn_conv_algo_search: "EXHAUSTIVE",
        arena_extend_strategy: "kNextPowerOfTwo",
        gpu_mem_limit: String(256 * 1024 * 1024),
      },
    ]);
    await s.release();
  });

  it("says plainly when a stock binding would ignore the options, and then builds TensorRT from fp32", async () => {
    const m = loadManifest(manifestWithVariants("stock", ["fp32", "int8_sym"]));
    const { create } = recorder();
    const { log, lines } = captureLogger();
    const s = await createSession(m, { providers: ["tensorrt"], threads: 1, variant: "auto", log, create, binding: STOCK, gpuInfo: ORIN });
    expect(s.variant).toBe("fp32");
    expect(s.setup.ignored).toMatch(/is the stock one: tensorrt gets only the device id/);
    const warn = lines().find((l) => String(l.msg).startsWith("model stock: provider tensorrt options not honoured: "));
    expect(warn?.level).toBe("warn");
    await s.release();
  });

  it("refuses combinations TensorRT cannot build, and falls back to the next provider with the reason", async () => {
    const cfg = configWith([{ id: "i8", manifest: "m.json", tensorrt: { precision: "int8" } }]);
    const m = loadManifest(manifestWithVariants("noqdq", ["fp32", "int8"]));
    const { log, lines } = captureLogger();
    const gpu = gpuSettingsOf(cfg.models[0]!, path.join(dir, "i8"));
    const s = await createSession(m, { providers: ["tensorrt", "cpu"], threads: 1, variant: "auto", log, gpu, binding: PATCHED, gpuInfo: ORIN });
    expect(s.provider).toBe("cpu");
    expect(s.skipped).toEqual([{ provider: "tensorrt", reason: "the manifest has no int8_sym variant (has: fp32, int8)" }]);
    await s.release();
    const u8 = createSession(m, { providers: ["tensorrt"], threads: 1, variant: "int8", log, gpu, binding: PATCHED, gpuInfo: ORIN });
    await expect(u8).rejects.toThrow("tensorrt: the int8 variant has uint8 activations, which TensorRT's explicit quantization rejects");
    expect(lines().some((l) => /^provider tensorrt unavailable: .+, falling back to cpu$/.test(String(l.msg)))).toBe(true);
  });

  it("reaches the real onnxruntime binding here, which accepts the entry and fails only for want of TensorRT", async () => {
    const m = loadManifest(manifestWithVariants("real", ["fp32"]));
    const { log } = captureLogger();
    const cacheDir = path.join(dir, "real-cache");
    const gpu = { ...DEFAULT_GPU_SETTINGS, tensorrt: { ...DEFAULT_GPU_SETTINGS.tensorrt, cacheDir } };
    const s = await createSession(m, {
      providers: ["tensorrt", "cpu"],
      threads: 1,
      variant: "auto",
      log,
      gpu,
      batch: { input: "images", max: 2 },
      gpuInfo: ORIN,
    });
    expect(s.provider).toBe("cpu");
    // Not "Invalid argument": the binding took the object; loading the TensorRT provider failed.
    expect(s.skipped[0]!.reason).not.toMatch(/Invalid argument/);
    expect(s.skipped[0]!.reason).toMatch(/libonnxruntime_providers_(tensorrt|shared)|TensorRT/i);
    // No GPU here: the engine folder prepared for the attempt is removed again.
    expect(readdirSync(cacheDir)).toEqual([]);
    await s.release();
  });

  it("skips a provider the binding was not built with, before preparing anything for it", async () => {
    const cpuOnly: BindingInfo = { ...STOCK, backends: [{ name: "cpu", bundled: true }] };
    const m = loadManifest(manifestWithVariants("cpuonly", ["fp32"]));
    const { log } = captureLogger();
    const cacheDir = path.join(dir, "cpuonly-cache");
    const gpu = { ...DEFAULT_GPU_SETTINGS, tensorrt: { ...DEFAULT_GPU_SETTINGS.tensorrt, cacheDir } };
    const s = await createSession(m, { providers: ["tensorrt", "cpu"], threads: 1, variant: "auto", log, gpu, binding: cpuOnly, gpuInfo: ORIN });
    expect(s.skipped).toEqual([{ provider: "tensorrt", reason: "the onnxruntime binding has no tensorrt provider (compiled in: cpu)" }]);
    expect(existsSync(cacheDir)).toBe(false);
    await s.release();
  });

  it("knows a patched binding by its marker", () => {
    const stock = describeBinding({ listSupportedBackends: () => [{ name: "cpu", bundled: true }] }, "/x.node", "1.23.2");
    expect(stock).toMatchObject({ patched: false, honoured: [], backends: [{ name: "cpu", bundled: true }] });
    const patched = describeBinding({ cityedgeProviderOptions: { version: 1, providers: ["tensorrt", "cuda"] } }, "/x.node", "1.23.2");
    expect(patched).toMatchObject({ patched: true, honoured: ["tensorrt", "cuda"], backends: [] });
  });
});

describe("engine cache keys", () => {
  const base: EngineKeyParts = {
    model: "cityedge-vehicles",
    variant: "int8_sym",
    sha256: "a".repeat(64),
    fp16: true,
    int8: true,
    profile: { min: "images:1x3x256x416", opt: "images:4x3x256x416", max: "images:4x3x256x416" },
    workspaceBytes: 1 << 30,
    builderOptimizationLevel: 3,
    dlaCore: null,
    cudaGraph: false,
    tensorrt: "10.3.0",
    gpu: "0:Orin sm 8.7",
    onnxruntime: "1.23.2",
  };

  it("differ whenever the model, precision, batch profile, TensorRT version, GPU or builder settings differ", () => {
    const changes: Partial<EngineKeyParts>[] = [
      { sha256: "b".repeat(64) },
      { variant: "fp32" },
      { fp16: false },
      { int8: false },
      { profile: { min: "images:1x3x256x416", opt: "images:2x3x256x416", max: "images:2x3x256x416" } },
      { profile: null },
      { tensorrt: "8.6.2" },
      { tensorrt: null },
      { gpu: "0:Xavier sm 7.2" },
      { gpu: "1:Orin sm 8.7" },
      { onnxruntime: "1.24.0" },
      { workspaceBytes: 1 << 29 },
      { builderOptimizationLevel: 5 },
      { dlaCore: 0 },
      { cudaGraph: true },
    ];
    const keys = new Set([engineCacheKey(base), ...changes.map((c) => engineCacheKey({ ...base, ...c }))]);
    expect(keys.size).toBe(changes.length + 1);
    expect(engineCacheKey({ ...base })).toBe(engineCacheKey(base));
    expect(engineCacheKey(base)).toMatch(/^[0-9a-f]{16}$/);
  });

  it("reuse the folder (cached) for the same parts, build in a new one after a change, and keep two old ones", () => {
    const cache = path.join(dir, "keyed");
    const first = prepareEngineDir(cache, base);
    expect(first.cached).toBe(false);
    writeFileSync(path.join(first.dir, "TensorrtExecutionProvider_TRTKernel_graph_main_123_0_0_sm87.engine"), "engine");
    expect(prepareEngineDir(cache, base)).toMatchObject({ dir: first.dir, cached: true });
    const changed = prepareEngineDir(cache, { ...base, sha256: "c".repeat(64) });
    expect(changed.dir).not.toBe(first.dir);
    expect(changed.cached).toBe(false);
    // The timing cache does not depend on the model: shared.
    expect(changed.timingDir).toBe(first.timingDir);
    const old = Date.now() / 1000 - 3600;
    for (const [i, sha] of ["d", "e", "f"].entries()) {
      const d = prepareEngineDir(cache, { ...base, sha256: sha.repeat(64) });
      utimesSync(d.dir, old + i, old + i);
    }
    const current = prepareEngineDir(cache, base);
    const left = readdirSync(cache).filter((d) => /^[0-9a-f]{16}$/.test(d));
    expect(left).toHaveLength(3);
    expect(left).toContain(current.key);
    expect(left).toContain(changed.key);
  });
});

describe("the GPU probe", () => {
  it("reads a Jetson: model, L4T release, TensorRT, CUDA and cuDNN from library names, compute capability by SoC", () => {
    const root = path.join(dir, "jetson-root");
    mkdirSync(path.join(root, "proc/device-tree"), { recursive: true });
    mkdirSync(path.join(root, "usr/lib/aarch64-linux-gnu"), { recursive: true });
    mkdirSync(path.join(root, "usr/local/cuda/lib64"), { recursive: true });
    mkdirSync(path.join(root, "etc"), { recursive: true });
    writeFileSync(path.join(root, "proc/device-tree/model"), "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\0");
    writeFileSync(
      path.join(root, "etc/nv_tegra_release"),
      "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n",
    );
    for (const f of ["libnvinfer.so", "libnvinfer.so.10", "libnvinfer.so.10.3.0", "libcudnn.so.9.3.0"])
      writeFileSync(path.join(root, "usr/lib/aarch64-linux-gnu", f), "");
    writeFileSync(path.join(root, "usr/local/cuda/lib64/libcudart.so.12.6.68"), "");
    const info = probeGpu({
      root,
      env: {},
      exec: () => {
        throw new Error("no nvidia-smi");
      },
    });
    expect(info).toEqual({
      tensorrt: "10.3.0",
      tensorrtLibrary: "/usr/lib/aarch64-linux-gnu/libnvinfer.so.10.3.0",
      cuda: "12.6.68",
      cudnn: "9.3.0",
      gpus: [{ name: "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", computeCapability: "8.7", source: "/proc/device-tree" }],
      jetson: { model: "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", l4t: "R36.4.3" },
    });
  });

  it("reads an x64 GPU from nvidia-smi, and finds nothing on a machine without one", () => {
    const empty = path.join(dir, "empty-root");
    mkdirSync(empty, { recursive: true });
    const x64 = probeGpu({ root: empty, env: {}, exec: () => "NVIDIA GeForce RTX 4060, 8.9\n" });
    expect(x64.gpus).toEqual([{ name: "NVIDIA GeForce RTX 4060", computeCapability: "8.9", source: "nvidia-smi" }]);
    const none = probeGpu({
      root: empty,
      env: {},
      exec: () => {
        throw new Error("ENOENT");
      },
    });
    expect(none).toEqual({ tensorrt: null, tensorrtLibrary: null, cuda: null, cudnn: null, gpus: [], jetson: null });
  });
});

describe("auto on the CPU", () => {
  it("takes the variant with the lowest measured cpu_ms, then the fixed order", () => {
    const m = loadManifest(manifestWithVariants("timed", ["fp32", "int8", "int8_sym"]));
    expect(cpuAutoOrder(m)).toEqual(["int8", "fp32", "fp16", "int8_sym"]);
    const timed = { ...m, variants: { ...m.variants, fp32: { ...m.variants.fp32!, cpu_ms: 9 }, int8_sym: { ...m.variants.int8_sym!, cpu_ms: 4 } } };
    expect(cpuAutoOrder(timed)).toEqual(["int8_sym", "fp32", "int8", "fp16"]);
  });
});

describe("warm-up and the stall watchdog", () => {
  const parts: DetectorPart[] = [];
  afterEach(async () => {
    for (const p of parts.splice(0)) await p.stop();
  });

  it("warms every batch size the detector will run, with no watchdog armed while an engine builds", async () => {
    const sink: MessageSink = { publish: () => undefined };
    const runs: number[] = [];
    let slowRuns = 2;
    // A stand-in for a TensorRT session whose first runs take far longer than the watchdog allows.
    const create = async () =>
      ({
        inputNames: ["images"],
        outputNames: ["output"],
        inputMetadata: [{ name: "images", isTensor: true, type: "float32", shape: ["N", 3, 32, 32] }],
        outputMetadata: [],
        run: async (feeds: Record<string, ort.Tensor>) => {
          const b = feeds.images!.dims[0]!;
          runs.push(b);
          if (slowRuns-- > 0) await new Promise((r) => setTimeout(r, 400));
          return { output: new ort.Tensor("float32", new Float32Array(6 * b).fill(0.5), [b, 6, 1]) };
        },
        release: () => Promise.resolve(),
      }) as unknown as ort.InferenceSession;
    const cams = ["a", "b", "c"].map((id) => ({ id, fps: 5, slot: new LatestFrameSlot(), detection: DETECTION_SCHEMA.parse({}) }));
    const { log, lines } = captureLogger();
    const seenProviders: unknown[] = [];
    const p = new DetectorPart({
      instances: "auto",
      thread: "main",
      modelId: "warm",
      manifestFile: manifestWithVariants("warm", ["fp32"]),
      providers: ["tensorrt"],
      threads: 1,
      variant: "auto",
      warmupRuns: 1,
      maxBatch: 4,
      cameras: cams,
      bus: busInto(sink, new Topics("cityedge", "dev-1")),
      log,
      create: async (file, o) => {
        seenProviders.push(o.executionProviders![0]);
        return create();
      },
      gpu: gpuSettingsOf(configWith([{ id: "warm", manifest: "m.json" }]).models[0]!, path.join(dir, "warm-cache")),
      probes: { binding: PATCHED, gpuInfo: ORIN, inputShape: () => Promise.resolve(["N", 3, 32, 32]) },
      stallMs: 100,
    });
    parts.push(p);
    await p.start();
    // One lane (a GPU session), three cameras: batches 1, 2 and 3, after the open's check run.
    expect(runs).toEqual([1, 2, 3]);
    expect(seenProviders[0]).toMatchObject({ trt_profile_min_shapes: "images:1x3x32x32", trt_profile_max_shapes: "images:3x3x32x32" });
    const h = p.health();
    expect(h).toMatchObject({
      state: "running",
      session_restarts: 0,
      batch: 3,
      provider: "tensorrt",
      provider_options: "honoured",
      precision: "fp16",
    });
    const warmup = h.warmup as { engine: string; batches: { batch: number; first_ms: number }[]; total_ms: number };
    expect(warmup.engine).toBe("built");
    expect(warmup.batches.map((b) => b.batch)).toEqual([1, 2, 3]);
    expect(warmup.batches[0]!.first_ms).toBeGreaterThanOrEqual(350);
    expect(lines().some((l) => String(l.msg).includes("made no progress"))).toBe(false);
    const ready = lines().find((l) => l.msg === "detector ready")!;
    expect(ready).toMatchObject({ engine: "built", batch: 3 });
  });
});
