// Calls the patch through check/harness.cc with real provider entries (check-patch.sh --lib).
// With a GPU build of libonnxruntime the entries' keys must come back from onnxruntime's own
// GetTensorRTProviderOptionsAsString / GetCUDAProviderOptionsAsString; with a CPU-only one,
// onnxruntime's update must have been reached (its error names the provider library it lacks).
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const harness = createRequire(import.meta.url)(process.argv[2]);

assert.deepEqual(harness.cityedgeProviderOptions, { version: 1, providers: ["tensorrt", "cuda"] });
console.log("marker:", JSON.stringify(harness.cityedgeProviderOptions));

const bad = [
  [{ name: "tensorrt", trt_fp16_enable: 1.5 }, 'tensorrt option "trt_fp16_enable" must be a whole number'],
  [{ name: "tensorrt", trt_engine_cache_path: "" }, 'tensorrt option "trt_engine_cache_path" must not be empty'],
  [{ name: "cuda", gpu_mem_limit: { mb: 1 } }, 'cuda option "gpu_mem_limit" must be a string, a boolean or a whole number'],
];
for (const [entry, message] of bad) {
  assert.throws(() => harness.update([entry]), { name: "TypeError", message: `Invalid argument: ${message}` });
  console.log("refused:", JSON.stringify(entry));
}

const good = [
  [
    {
      name: "tensorrt",
      deviceId: 0,
      trt_fp16_enable: "1",
      trt_engine_cache_enable: true,
      trt_builder_optimization_level: 4,
      trt_profile_min_shapes: "images:1x3x256x416",
    },
    ["trt_fp16_enable=1", "trt_engine_cache_enable=1", "trt_builder_optimization_level=4", "trt_profile_min_shapes=images:1x3x256x416"],
  ],
  [
    { name: "cuda", deviceId: 0, cudnn_conv_algo_search: "HEURISTIC", arena_extend_strategy: "kSameAsRequested" },
    ["cudnn_conv_algo_search=HEURISTIC"],
  ],
];
let reached = 0;
for (const [entry, expected] of good) {
  let text;
  try {
    [text] = harness.update([entry]);
  } catch (err) {
    // A CPU-only onnxruntime: the update was called, and failed loading the provider library.
    assert.match(err.message, new RegExp(`^${entry.name} provider options: .*(Failed to load library|not enabled)`));
    console.log(`reached onnxruntime (no ${entry.name} library here):`, err.message.split("\n")[0].slice(0, 160));
    reached++;
    continue;
  }
  for (const kv of expected) assert.ok(text.includes(kv), `${kv} not in ${text}`);
  console.log(`${entry.name} options in onnxruntime:`, text);
}
console.log(
  reached === good.length ? "smoke: passed (CPU-only onnxruntime: keys reached the update call)" : "smoke: passed (keys read back from onnxruntime)",
);
