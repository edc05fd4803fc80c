import { z } from "zod";
import { id } from "./common.js";

export const EXECUTION_PROVIDER = z.enum(["tensorrt", "cuda", "cpu"]);

export const MODEL_SCHEMA = z.strictObject({
  id: id("model id"),
  manifest: z.string().min(1).describe("Path to the model's manifest.json (relative paths are from the config file)"),
  variant: z.enum(["fp32", "fp16", "int8", "auto"]).default("auto").describe("Which variant of the manifest to load"),
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
      'Sessions of a detection model running frames of different cameras at the same time. "auto": on the CPU provider one per thread, at most one per camera (a 2-core box runs two 1-thread sessions side by side, measured 1.5-1.9x the frames of one 2-thread session); on TensorRT/CUDA one',
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
  tensorrt: z
    .strictObject({
      fp16: z.boolean().default(true).describe("Let TensorRT build fp16 kernels"),
      int8: z.boolean().default(false).describe("Let TensorRT build int8 kernels (needs a calibration table next to the model)"),
      cache_dir: z
        .string()
        .min(1)
        .optional()
        .describe(
          "Engine and timing cache directory; default <data_dir>/trt-cache/<model id>. The first build takes minutes on a Jetson; later starts reuse it",
        ),
    })
    .prefault({})
    .describe("TensorRT execution provider options"),
});

export const MODELS_SCHEMA = z.array(MODEL_SCHEMA).default([]).describe("ONNX models loaded by the daemon");
