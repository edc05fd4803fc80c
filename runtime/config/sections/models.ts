import { z } from "zod";
import { id } from "./common.js";

export const EXECUTION_PROVIDER = z.enum(["tensorrt", "cuda", "cpu"]);

export const MODEL_SCHEMA = z.strictObject({
  id: id("model id"),
  manifest: z.string().min(1).describe("Path to the model's manifest.json (relative paths are from the config file)"),
  variant: z
    .enum(["fp32", "fp16", "int8", "int8_sym", "auto"])
    .default("auto")
    .describe(
      'Which variant of the manifest to load. "auto": the symmetric int8 (QDQ) file on TensorRT, fp16 on CUDA, the fastest measured on the CPU',
    ),
  providers: z.array(EXECUTION_PROVIDER).min(1).default(["tensorrt", "cuda", "cpu"]).describe("Execution providers to try, in order"),
  threads: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(2)
    .describe("CPU threads for this model in total, shared by its instances (each CPU instance gets threads / instances intra-op threads)"),
  instances: z
    .union([z.literal("auto"), z.number().int().min(1).max(16)])
    .default("auto")
    .describe(
      'Sessions of a detection model running frames of different cameras at the same time. "auto": on the CPU provider one per thread, at most one per camera (on a small CPU, sessions side by side keep every core busy where one session hands each operator between its threads; figures in docs/benchmarks.md); on TensorRT/CUDA one',
    ),
  inference_thread: z
    .enum(["worker", "main"])
    .default("worker")
    .describe(
      'Where inference runs: "worker" (a worker thread, so frames, the outbox and MQTT keep flowing during a run) or "main" (the event loop)',
    ),
  warmup_runs: z
    .number()
    .int()
    .min(0)
    .max(100)
    .default(1)
    .describe("Inference runs on a blank input before the first frame, so the first real frame is not slow"),
  max_batch: z
    .number()
    .int()
    .min(1)
    .max(32)
    .default(4)
    .describe("Most camera frames put into one run when the model's batch dimension is dynamic; fixed-batch models run one frame at a time"),
  gpu_device: z.number().int().min(0).max(15).default(0).describe("CUDA device the TensorRT and CUDA providers use (a Jetson has one: 0)"),
  tensorrt: z
    .strictObject({
      precision: z
        .enum(["auto", "fp32", "fp16", "int8"])
        .default("auto")
        .describe(
          'What TensorRT may build. "auto": int8 for the symmetric int8 (QDQ) variant, fp16 otherwise; "fp16": fp16 and fp32 kernels; "fp32": fp32 only; "int8": int8 from the QDQ variant (needs an int8_sym variant; calibration tables are not used), fp16 for the rest',
        ),
      engine_cache: z
        .boolean()
        .default(true)
        .describe(
          "Keep built engines on disk, keyed by model file, variant, precision, batch profile, TensorRT version and GPU, so a restart loads them instead of building for minutes",
        ),
      timing_cache: z.boolean().default(true).describe("Keep TensorRT's layer timing cache, which shortens later builds (also of other precisions)"),
      cache_dir: z
        .string()
        .min(1)
        .optional()
        .describe("Engine and timing cache directory; default <data_dir>/trt-cache/<model id>. Created when missing"),
      workspace_mb: z
        .number()
        .int()
        .min(16)
        .max(65536)
        .default(1024)
        .describe("Most GPU memory TensorRT may use as scratch space while building (MiB)"),
      builder_optimization_level: z
        .number()
        .int()
        .min(0)
        .max(5)
        .default(3)
        .describe("TensorRT's builder optimization level: higher searches longer for faster kernels (TensorRT's default 3)"),
      dla_core: z
        .number()
        .int()
        .min(0)
        .max(1)
        .optional()
        .describe("Run on this DLA core (Jetson AGX/NX Orin) instead of the GPU; layers the DLA cannot run fall back to the GPU"),
      cuda_graph: z
        .boolean()
        .default(false)
        .describe("Capture the run as a CUDA graph (less launch overhead; only for models whose shapes do not change)"),
    })
    .prefault({})
    .describe("TensorRT execution provider options"),
  cuda: z
    .strictObject({
      cudnn_conv_algo_search: z
        .enum(["exhaustive", "heuristic", "default"])
        .default("heuristic")
        .describe(
          'How cuDNN picks convolution algorithms: "exhaustive" benchmarks each (slow first run), "heuristic" asks cuDNN, "default" takes the default',
        ),
      arena_extend_strategy: z
        .enum(["next_power_of_two", "same_as_requested"])
        .default("same_as_requested")
        .describe(
          "How the CUDA memory arena grows: by powers of two (fewer allocations) or by what is asked (less memory, what a shared Jetson wants)",
        ),
      gpu_mem_limit_mb: z.number().int().min(16).optional().describe("Most GPU memory the CUDA provider's arena may hold (MiB); default: no limit"),
    })
    .prefault({})
    .describe("CUDA execution provider options"),
});

export const MODELS_SCHEMA = z.array(MODEL_SCHEMA).default([]).describe("ONNX models loaded by the daemon");
