import { z } from "zod";
import { id } from "./common.js";

export const EXECUTION_PROVIDER = z.enum(["tensorrt", "cuda", "cpu"]);

export const MODEL_SCHEMA = z.strictObject({
  id: id("model id"),
  manifest: z.string().min(1).describe("Path to the model's manifest.json (relative paths are from the config file)"),
  variant: z.enum(["fp32", "fp16", "int8", "auto"]).default("auto").describe("Which variant of the manifest to load"),
  providers: z.array(EXECUTION_PROVIDER).min(1).default(["tensorrt", "cuda", "cpu"]).describe("Execution providers to try, in order"),
  threads: z.number().int().min(1).max(64).default(2).describe("CPU provider intra-op threads"),
});

export const MODELS_SCHEMA = z.array(MODEL_SCHEMA).default([]).describe("ONNX models loaded by the daemon");
