import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

/**
 * The property our patch to onnxruntime's Node binding (scripts/onnxruntime/) exports: which
 * providers' option objects it hands to onnxruntime's string key/value option updates. A stock
 * binding has no such property and gives TensorRT and CUDA nothing but the device id.
 */
export const BINDING_MARKER = "cityedgeProviderOptions";

export interface BindingInfo {
  /** The native binding file onnxruntime-node loads. */
  file: string;
  /** onnxruntime-node's version (the binding is built from the same onnxruntime release). */
  version: string;
  /** Providers compiled into the binding, as it lists them (cpu, cuda, tensorrt, webgpu …). */
  backends: { name: string; bundled: boolean }[];
  /** True when the binding carries our patch. */
  patched: boolean;
  /** Providers whose every option reaches onnxruntime. */
  honoured: string[];
}

interface NativeBinding {
  listSupportedBackends?: () => { name: string; bundled: boolean }[];
  [BINDING_MARKER]?: { version?: number; providers?: unknown };
}

const require = createRequire(import.meta.url);

function loadNative(): NativeBinding {
  return (require("onnxruntime-node/dist/binding.js") as { binding: NativeBinding }).binding;
}

/** Reads what a loaded binding says about itself; `native` is injected by tests. */
export function describeBinding(native: NativeBinding, file: string, version: string): BindingInfo {
  let backends: BindingInfo["backends"] = [];
  try {
    backends = native.listSupportedBackends?.() ?? [];
  } catch {
    backends = [];
  }
  const marker = native[BINDING_MARKER];
  const providers = marker && Array.isArray(marker.providers) ? marker.providers.filter((p): p is string => typeof p === "string") : [];
  return { file, version, backends, patched: marker !== undefined, honoured: providers };
}

let cached: BindingInfo | undefined;

/** What this process's onnxruntime-node binding is (loaded once, as onnxruntime-node loads it). */
export function bindingInfo(): BindingInfo {
  if (cached) return cached;
  const pkgDir = path.dirname(require.resolve("onnxruntime-node/package.json"));
  const file = path.join(pkgDir, "bin", "napi-v6", process.platform, process.arch, "onnxruntime_binding.node");
  const version = (require("onnxruntime-node/package.json") as { version: string }).version;
  cached = describeBinding(existsSync(file) ? loadNative() : {}, file, version);
  return cached;
}

/** The folder of the native binding: where the GPU build puts libonnxruntime and the provider libraries. */
export function bindingDir(): string {
  return path.dirname(bindingInfo().file);
}

/**
 * Why a provider's settings would not take effect with this binding, or null when they do.
 * The CPU provider has no settings of ours to lose.
 */
export function optionsIgnored(info: BindingInfo, provider: string): string | null {
  if (provider === "cpu" || info.honoured.includes(provider)) return null;
  const lost =
    provider === "tensorrt"
      ? "precision (fp16/int8), engine and timing caches, batch profiles, workspace, builder level and DLA are ignored, so every start builds fp32 engines"
      : "the cuDNN algorithm search and the memory arena settings are ignored";
  return info.patched
    ? `the onnxruntime binding ${info.file} is patched, but not for ${provider}: ${lost}`
    : `the onnxruntime binding ${info.file} is the stock one: ${provider} gets only the device id; ${lost}; install the patched binding (docs/gpu.md)`;
}
