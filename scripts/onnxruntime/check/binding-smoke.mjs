// Calls the whole patched binding, built from onnxruntime's own js/node/src (check-patch.sh
// --ort-src with --lib), through onnxruntime-node's own API: the entries go the way the daemon's
// do, through ParseExecutionProviders and the lines apply-patch.py inserted there.
//
//   node binding-smoke.mjs PKG_DIR MODEL   (PKG_DIR/node_modules/onnxruntime-node holds the binding)
//
// The provider entries name a model that is not there: the patch runs while the session options
// are parsed, before the model is read, so what comes back is the patch's own refusal, onnxruntime's
// answer to the keys, or (past both) the missing model.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";

const [pkgDir, model] = process.argv.slice(2);
const require = createRequire(path.join(pkgDir, "node_modules", "index.js"));
const ort = require("onnxruntime-node");
const { binding } = require("onnxruntime-node/dist/binding");
const MISSING = path.join(pkgDir, "no-such-model.onnx");

assert.deepEqual(binding.cityedgeProviderOptions, { version: 1, providers: ["tensorrt", "cuda"] });
console.log("binding marker:", JSON.stringify(binding.cityedgeProviderOptions));

const create = (entry) => ort.InferenceSession.create(MISSING, { executionProviders: [entry] });

await assert.rejects(create({ name: "tensorrt", deviceId: 0, trt_fp16_enable: 1.5 }), {
  name: "TypeError",
  message: 'Invalid argument: tensorrt option "trt_fp16_enable" must be a whole number',
});
await assert.rejects(create({ name: "cuda", deviceId: 0, gpu_mem_limit: [1] }), {
  name: "TypeError",
  message: 'Invalid argument: cuda option "gpu_mem_limit" must be a string, a boolean or a whole number',
});
console.log("binding refused bad values by key");

// A CPU-only onnxruntime fails loading the provider library inside the update; a GPU one checks
// the keys (and refuses the unknown one by name) or, past the update, fails on the missing model.
const reached = new RegExp(`(provider options: .*(Failed to load library|not enabled|trt_no_such_key))|${MISSING}`);
for (const entry of [
  { name: "tensorrt", deviceId: 0, trt_fp16_enable: true, trt_engine_cache_path: "/tmp/engines" },
  { name: "tensorrt", deviceId: 0, trt_no_such_key: "1" },
  { name: "cuda", deviceId: 0, cudnn_conv_algo_search: "HEURISTIC" },
]) {
  const err = await create(entry).then(
    () => assert.fail(`a session was made for ${MISSING}`),
    (e) => e,
  );
  assert.match(err.message, reached);
  console.log(`binding handed ${entry.name} keys to onnxruntime:`, err.message.split("\n")[0].slice(0, 140));
}

// An entry with nothing but the device id takes the stock path, untouched by the patch.
const stock = await create({ name: "tensorrt", deviceId: 0 }).then(
  () => assert.fail(`a session was made for ${MISSING}`),
  (e) => e,
);
assert.doesNotMatch(stock.message, /provider options:/);
console.log("binding stock path:", stock.message.split("\n")[0].slice(0, 140));

const session = await ort.InferenceSession.create(model, { executionProviders: ["cpu"] });
assert.ok(session.inputNames.length > 0);
console.log("binding CPU session inputs:", session.inputNames.join(","));
console.log("binding-smoke: passed");
