import type { z } from "zod";
import type { MODEL_SCHEMA } from "../config/sections/models.js";
import type { VariantName } from "./manifest.js";

/** The GPU settings of one model, from its config (`gpu_device`, `tensorrt:`, `cuda:`). */
export interface GpuSettings {
  deviceId: number;
  tensorrt: {
    precision: "auto" | "fp32" | "fp16" | "int8";
    engineCache: boolean;
    timingCache: boolean;
    /** The model's cache folder; engine folders are keyed below it. */
    cacheDir?: string;
    workspaceMb: number;
    builderOptimizationLevel: number;
    dlaCore?: number;
    cudaGraph: boolean;
  };
  cuda: {
    cudnnConvAlgoSearch: "exhaustive" | "heuristic" | "default";
    arenaExtendStrategy: "next_power_of_two" | "same_as_requested";
    gpuMemLimitMb?: number;
  };
}

export const DEFAULT_GPU_SETTINGS: GpuSettings = {
  deviceId: 0,
  tensorrt: { precision: "auto", engineCache: true, timingCache: true, workspaceMb: 1024, builderOptimizationLevel: 3, cudaGraph: false },
  cuda: { cudnnConvAlgoSearch: "heuristic", arenaExtendStrategy: "same_as_requested" },
};

/** The batch range one TensorRT engine must cover: the input's other dimensions and the largest batch the model runs. */
export interface BatchProfile {
  input: string;
  /** Every dimension after the batch one, e.g. [3, 256, 416]. */
  dims: readonly number[];
  maxBatch: number;
}

/** trt_profile_min/opt/max_shapes ("images:1x3x256x416"): batch 1 up to the largest, tuned for the largest. */
export function profileShapes(p: BatchProfile): { min: string; opt: string; max: string } {
  const shape = (b: number) => `${p.input}:${[b, ...p.dims].join("x")}`;
  return { min: shape(1), opt: shape(p.maxBatch), max: shape(p.maxBatch) };
}

/**
 * Which TensorRT precisions a variant builds with. The symmetric int8 file's Q/DQ pairs set
 * int8 (its scales come from the file); fp16 lets everything outside them run in half precision.
 * Returns a reason instead when the setting and the variant cannot go together.
 */
export function tensorRtPrecision(precision: GpuSettings["tensorrt"]["precision"], variant: VariantName): { fp16: boolean; int8: boolean } | string {
  const qdq = variant === "int8_sym";
  if (variant === "int8") {
    return "the int8 variant has uint8 activations, which TensorRT's explicit quantization rejects (use int8_sym, fp16 or fp32)";
  }
  switch (precision) {
    case "fp32":
      return { fp16: false, int8: qdq };
    case "int8":
      return qdq ? { fp16: true, int8: true } : `tensorrt.precision int8 needs the int8_sym variant (QDQ, zero point 0), not ${variant}`;
    case "fp16":
    case "auto":
      return { fp16: true, int8: qdq };
  }
}

/** Variants TensorRT tries under "auto", by precision setting; options ignored by a stock binding: fp32 first. */
export function tensorRtAutoOrder(precision: GpuSettings["tensorrt"]["precision"], honoured: boolean): VariantName[] {
  if (!honoured) return ["fp32", "fp16"];
  if (precision === "int8") return ["int8_sym"];
  if (precision === "auto") return ["int8_sym", "fp32", "fp16"];
  return ["fp32", "fp16"];
}

export interface TensorRtInputs {
  settings: GpuSettings;
  fp16: boolean;
  int8: boolean;
  profile: { min: string; opt: string; max: string } | null;
  /** Keyed engine folder and timing cache folder (engineCache.ts), when the engine cache is on. */
  engineDir?: string;
  timingDir?: string;
}

const flag = (b: boolean) => (b ? "1" : "0");

/** onnxruntime's TensorRT provider options, as the strings UpdateTensorRTProviderOptions takes. */
export function tensorRtOptions(i: TensorRtInputs): Record<string, string> {
  const t = i.settings.tensorrt;
  const o: Record<string, string> = {
    trt_fp16_enable: flag(i.fp16),
    trt_int8_enable: flag(i.int8),
    trt_max_workspace_size: String(t.workspaceMb * 1024 * 1024),
    trt_builder_optimization_level: String(t.builderOptimizationLevel),
    trt_cuda_graph_enable: flag(t.cudaGraph),
  };
  if (t.engineCache && i.engineDir !== undefined) {
    o.trt_engine_cache_enable = "1";
    o.trt_engine_cache_path = i.engineDir;
  } else {
    o.trt_engine_cache_enable = "0";
  }
  if (t.timingCache && i.timingDir !== undefined) {
    o.trt_timing_cache_enable = "1";
    o.trt_timing_cache_path = i.timingDir;
  } else {
    o.trt_timing_cache_enable = "0";
  }
  if (i.profile) {
    o.trt_profile_min_shapes = i.profile.min;
    o.trt_profile_opt_shapes = i.profile.opt;
    o.trt_profile_max_shapes = i.profile.max;
  }
  if (t.dlaCore !== undefined) {
    o.trt_dla_enable = "1";
    o.trt_dla_core = String(t.dlaCore);
  } else {
    o.trt_dla_enable = "0";
  }
  return o;
}

/** onnxruntime's CUDA provider options, as the strings UpdateCUDAProviderOptions takes. */
export function cudaOptions(settings: GpuSettings): Record<string, string> {
  const c = settings.cuda;
  const o: Record<string, string> = {
    cudnn_conv_algo_search: c.cudnnConvAlgoSearch.toUpperCase(),
    arena_extend_strategy: c.arenaExtendStrategy === "next_power_of_two" ? "kNextPowerOfTwo" : "kSameAsRequested",
  };
  if (c.gpuMemLimitMb !== undefined) o.gpu_mem_limit = String(c.gpuMemLimitMb * 1024 * 1024);
  return o;
}

/**
 * The execution provider entry the binding receives. Our patched binding passes every key but
 * `name` and `deviceId` to onnxruntime; a stock one reads `deviceId` and ignores the rest.
 */
export function providerEntry(
  name: "tensorrt" | "cuda",
  deviceId: number,
  options: Record<string, string>,
): { name: string; deviceId: number } & Record<string, string | number> {
  return { name, deviceId, ...options };
}

/** A model's config as GpuSettings; `cacheDir` is the resolved `tensorrt.cache_dir` (or its default). */
export function gpuSettingsOf(model: Pick<z.output<typeof MODEL_SCHEMA>, "gpu_device" | "tensorrt" | "cuda">, cacheDir: string): GpuSettings {
  const t = model.tensorrt;
  const c = model.cuda;
  return {
    deviceId: model.gpu_device,
    tensorrt: {
      precision: t.precision,
      engineCache: t.engine_cache,
      timingCache: t.timing_cache,
      cacheDir,
      workspaceMb: t.workspace_mb,
      builderOptimizationLevel: t.builder_optimization_level,
      ...(t.dla_core !== undefined ? { dlaCore: t.dla_core } : {}),
      cudaGraph: t.cuda_graph,
    },
    cuda: {
      cudnnConvAlgoSearch: c.cudnn_conv_algo_search,
      arenaExtendStrategy: c.arena_extend_strategy,
      ...(c.gpu_mem_limit_mb !== undefined ? { gpuMemLimitMb: c.gpu_mem_limit_mb } : {}),
    },
  };
}
