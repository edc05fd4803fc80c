import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

/** One GPU as the device reports it. */
export interface GpuDevice {
  name: string;
  /** "8.7"; null when nothing on the device says. */
  computeCapability: string | null;
  /** Where the figures came from: "nvidia-smi", "/proc/driver/nvidia", "/proc/device-tree". */
  source: string;
}

/** What the device offers the TensorRT and CUDA providers, found without touching the GPU. */
export interface GpuInfo {
  /** TensorRT's version from libnvinfer's file name ("10.3.0"), or null when not installed. */
  tensorrt: string | null;
  tensorrtLibrary: string | null;
  cuda: string | null;
  cudnn: string | null;
  gpus: GpuDevice[];
  /** /proc/device-tree/model and /etc/nv_tegra_release on a Jetson; null elsewhere. */
  jetson: { model: string; l4t: string | null } | null;
}

export interface GpuProbe {
  /** Prefix for every absolute path read (tests point it at a fake root). */
  root?: string;
  env?: NodeJS.ProcessEnv;
  /** Runs a program and returns its stdout, or throws; default execFileSync with a timeout. */
  exec?: (file: string, args: string[]) => string;
  /** Extra library folders to look in first (onnxruntime-node's own). */
  libraryDirs?: string[];
}

const LIB_DIRS = [
  "/usr/lib/aarch64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/usr/local/cuda/lib64",
  "/usr/local/cuda/targets/aarch64-linux/lib",
  "/usr/local/cuda/targets/x86_64-linux/lib",
  "/usr/lib64",
  "/usr/local/lib",
  "/usr/lib/aarch64-linux-gnu/tegra",
];

/**
 * Compute capability of Jetson modules by the SoC in the device-tree model string (NVIDIA's
 * CUDA GPUs table): Orin sm_87, Xavier sm_72, TX2 sm_62, Nano / TX1 sm_53.
 */
const JETSON_CC: [RegExp, string][] = [
  [/\bOrin\b/i, "8.7"],
  [/\bXavier\b/i, "7.2"],
  [/\bTX2\b/i, "6.2"],
  [/\b(Nano|TX1)\b/i, "5.3"],
];

function read(root: string, file: string): string | null {
  try {
    return readFileSync(path.join(root, file), "utf8");
  } catch {
    return null;
  }
}

function defaultExec(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: "utf8", timeout: 5000, stdio: ["ignore", "pipe", "ignore"] });
}

/** Numeric order; a longer version with the same start is the more specific, so the greater ("10.3.0" over "10"). */
function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** The highest version of `lib<name>.so.X.Y.Z` in the folders, with its path. */
function libraryVersion(root: string, dirs: readonly string[], name: string): { version: string; file: string } | null {
  const re = new RegExp(`^lib${name}\\.so\\.(\\d+(?:\\.\\d+)*)$`);
  let best: { version: string; file: string; parts: number[] } | null = null;
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(path.join(root, dir));
    } catch {
      continue;
    }
    for (const e of entries) {
      const m = re.exec(e);
      if (!m) continue;
      const parts = m[1]!.split(".").map(Number);
      if (!best || compareVersions(parts, best.parts) > 0) best = { version: m[1]!, file: path.join(dir, e), parts };
    }
  }
  return best ? { version: best.version, file: best.file } : null;
}

/** The first line of /etc/nv_tegra_release as "R36.4.0" (from "# R36 (release), REVISION: 4.0, ..."). */
export function l4tRelease(text: string): string | null {
  const m = /R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)/.exec(text);
  return m ? `R${m[1]}.${m[2]}` : null;
}

/**
 * Looks for TensorRT, CUDA and cuDNN libraries and for GPUs, the way an operator would: library
 * file names, nvidia-smi, the NVIDIA driver's /proc files, the device tree. Never fails: what is
 * not found is null or empty.
 */
export function probeGpu(probe: GpuProbe = {}): GpuInfo {
  const root = probe.root ?? "/";
  const env = probe.env ?? process.env;
  const exec = probe.exec ?? defaultExec;
  const dirs = [...(probe.libraryDirs ?? []), ...(env.LD_LIBRARY_PATH ?? "").split(":").filter((d) => d.startsWith("/")), ...LIB_DIRS];
  const trt = libraryVersion(root, dirs, "nvinfer");
  const cuda = libraryVersion(root, dirs, "cudart");
  const cudnn = libraryVersion(root, dirs, "cudnn");

  let jetson: GpuInfo["jetson"] = null;
  const model = read(root, "/proc/device-tree/model")?.replace(/\0/g, "").trim();
  const tegra = read(root, "/etc/nv_tegra_release");
  if (tegra !== null || (model !== undefined && /jetson|nvidia/i.test(model))) {
    jetson = { model: model ?? "unknown Jetson", l4t: tegra !== null ? l4tRelease(tegra) : null };
  }

  const gpus: GpuDevice[] = [];
  try {
    const out = exec("nvidia-smi", ["--query-gpu=name,compute_cap", "--format=csv,noheader"]);
    for (const line of out.split("\n").filter((l) => l.trim() !== "")) {
      const [name, cc] = line.split(",").map((s) => s.trim());
      if (name) gpus.push({ name, computeCapability: cc && /^\d+\.\d+$/.test(cc) ? cc : null, source: "nvidia-smi" });
    }
  } catch {
    // no nvidia-smi, or no driver: the /proc files below may still name the GPU
  }
  if (gpus.length === 0) {
    const base = "/proc/driver/nvidia/gpus";
    let ids: string[] = [];
    try {
      ids = readdirSync(path.join(root, base));
    } catch {
      ids = [];
    }
    for (const id of ids.sort()) {
      const info = read(root, `${base}/${id}/information`);
      const name = info && /^Model:\s*(.+)$/m.exec(info)?.[1]?.trim();
      if (name) gpus.push({ name, computeCapability: null, source: "/proc/driver/nvidia" });
    }
  }
  if (gpus.length === 0 && jetson) {
    const cc = JETSON_CC.find(([re]) => re.test(jetson.model))?.[1] ?? null;
    gpus.push({ name: jetson.model, computeCapability: cc, source: "/proc/device-tree" });
  }
  return {
    tensorrt: trt?.version ?? null,
    tensorrtLibrary: trt?.file ?? null,
    cuda: cuda?.version ?? null,
    cudnn: cudnn?.version ?? null,
    gpus,
    jetson,
  };
}

let cached: GpuInfo | undefined;

/** {@link probeGpu} of this machine, once per process (the hardware does not change under us). */
export function gpuInfo(libraryDirs: string[] = []): GpuInfo {
  cached ??= probeGpu({ libraryDirs: libraryDirs.filter((d) => existsSync(d)) });
  return cached;
}
