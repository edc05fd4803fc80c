/**
 * Model loading and inference, for every feature that runs an ONNX model (detection,
 * forecasting, model updates).
 *
 * ```ts
 * const manifest = loadManifest("models/yolox_nano/manifest.json");
 * const model = await createSession(manifest, { providers: ["tensorrt", "cuda", "cpu"], threads: 2, variant: "auto", log });
 * model.provider; // "cpu" here, with a warning logged for each provider skipped
 * const out = await model.run({ [inputName]: tensor });
 * ```
 *
 * - {@link loadManifest} validates a manifest (zod) and resolves its variant files;
 *   {@link asDetectionManifest} narrows it to the detection fields.
 * - {@link createSession} checks the SHA-256, probes the provider chain one provider at a time
 *   and returns a {@link ModelSession} (session, provider, variant, `run()`).
 * - {@link TensorBuffer} is a preallocated input tensor that frames are converted into.
 */
export {
  loadManifest,
  ManifestError,
  resolveModelFile,
  sha256File,
  sha256Problem,
  variantFiles,
  VARIANTS,
  verifySha256,
  type ModelManifest,
  type VariantName,
} from "./manifest.js";
export { cpuAutoOrder, createSession, ModelSession, type ProviderName, type ProviderSetup, type SessionOptions } from "./session.js";
export { bindingInfo, describeBinding, optionsIgnored, type BindingInfo } from "./binding.js";
export { engineCacheKey, prepareEngineDir, type EngineDir, type EngineKeyParts } from "./engineCache.js";
export { gpuInfo, probeGpu, type GpuInfo } from "./gpuInfo.js";
export { cudaOptions, DEFAULT_GPU_SETTINGS, profileShapes, tensorRtOptions, tensorRtPrecision, type GpuSettings } from "./providerOptions.js";
export { TensorBuffer, type InputSpec, type PixelSource } from "./tensorBuffer.js";
export { warmUp } from "./warmup.js";
export { createInWorker, WorkerSession } from "./workerSession.js";
