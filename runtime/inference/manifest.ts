import { createHash } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";

/**
 * "int8": QDQ with uint8 activations (onnxruntime's fast CPU kernels); "int8_sym": QDQ with
 * symmetric int8 activations and weights (zero point 0), the only INT8 form TensorRT imports.
 */
export const VARIANTS = ["fp32", "fp16", "int8", "int8_sym"] as const;
export type VariantName = (typeof VARIANTS)[number];
export const DECODERS = ["yolov8", "yolox", "yolov5"] as const;
export type DecoderName = (typeof DECODERS)[number];

const VARIANT_SCHEMA = z.strictObject({
  file: z.string().min(1).describe("The .onnx file: relative to the manifest, absolute, or with ${env:NAME} / ${env:NAME:-default} references"),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits")
    .describe("SHA-256 of the file, checked at load"),
  cpu_ms: z
    .number()
    .positive()
    .optional()
    .describe("Milliseconds per picture on the CPU provider at 1 thread, batch 1 (cityedge bench models); auto on the CPU takes the fastest variant"),
});

const TRIPLE = z.tuple([z.number(), z.number(), z.number()]);

const DETECTION_INPUT_SCHEMA = z.strictObject({
  name: z.string().min(1).describe("Input tensor name"),
  layout: z.literal("NCHW").describe("Tensor layout"),
  width: z.number().int().min(8).max(8192),
  height: z.number().int().min(8).max(8192),
  color: z.enum(["rgb", "bgr"]).describe("Channel order the model expects"),
  scale: z.number().positive().describe("Pixel values (0..255) are multiplied by this first"),
  mean: TRIPLE.describe("Per-channel mean subtracted after scaling, in the model's channel order"),
  std: TRIPLE.refine((t) => t.every((v) => v > 0), "std values must be > 0").describe("Per-channel divisor applied last"),
  letterbox_pad: z.number().int().min(0).max(255).default(114).describe("Grey value of the letterbox padding"),
});

const DETECTION_OUTPUT_SCHEMA = z.strictObject({
  name: z.string().min(1).describe("Output tensor name"),
  decoder: z.enum(DECODERS).describe("Output layout: yolov8 [B,4+C,N], yolox [B,N,5+C] grid-relative, yolov5 [B,N,5+C]"),
  strides: z
    .array(z.number().int().min(1))
    .min(1)
    .optional()
    .describe(
      "Anchor grid strides. YOLOX decodes with them (default [8, 16, 32]); yolov8 outputs carry boxes in pixels, so for them the strides only document the grid",
    ),
});

const BASE_SCHEMA = z.looseObject({
  id: z.string().min(1),
  version: z.union([z.string().min(1), z.number()]),
  task: z.string().min(1),
  variants: z
    .partialRecord(z.enum(VARIANTS), VARIANT_SCHEMA)
    .refine((v) => Object.keys(v).length > 0, "must list at least one of fp32, fp16, int8, int8_sym"),
});

const DETECTION_SCHEMA = BASE_SCHEMA.extend({
  task: z.literal("detection"),
  input: DETECTION_INPUT_SCHEMA,
  output: DETECTION_OUTPUT_SCHEMA,
  labels: z.array(z.string().min(1)).min(1),
  thresholds: z.strictObject({ score: z.number().min(0).max(1), nms_iou: z.number().min(0).max(1) }),
});

export type ModelManifest = z.output<typeof BASE_SCHEMA> & {
  /** Absolute path of the manifest file. */
  manifest_file: string;
  /** Variant files resolved to absolute paths. */
  files: Partial<Record<VariantName, string>>;
};
export type DetectionManifest = z.output<typeof DETECTION_SCHEMA> & Pick<ModelManifest, "manifest_file" | "files">;

/** A manifest that cannot be used: names the file and every problem in it. */
export class ManifestError extends Error {
  constructor(file: string, problems: string[]) {
    super(`model manifest ${file}: ${problems.join("; ")}`);
    this.name = "ManifestError";
  }
}

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Resolves `${env:NAME}` / `${env:NAME:-default}` and makes the path absolute against the manifest's folder. */
export function resolveModelFile(ref: string, manifestDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const expanded = ref.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
    const v = env[name];
    if (v !== undefined && v !== "") return v;
    if (fallback !== undefined) return fallback;
    throw new Error(`environment variable ${name} is not set (used in "${ref}")`);
  });
  return path.resolve(manifestDir, expanded);
}

function zodProblems(err: z.ZodError): string[] {
  return err.issues.map((i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`);
}

/**
 * Reads and validates a model manifest (any task). Variant files are resolved, not yet checked:
 * {@link verifySha256} does that when the variant is loaded.
 */
export function loadManifest(file: string, env: NodeJS.ProcessEnv = process.env): ModelManifest {
  const abs = path.resolve(file);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(abs, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ManifestError(abs, [e.code === "ENOENT" ? "file not found" : e.code ? `cannot read: ${e.code}` : `not valid JSON: ${e.message}`]);
  }
  const parsed = BASE_SCHEMA.safeParse(raw);
  if (!parsed.success) throw new ManifestError(abs, zodProblems(parsed.error));
  const files: Partial<Record<VariantName, string>> = {};
  const problems: string[] = [];
  for (const [name, v] of Object.entries(parsed.data.variants) as [VariantName, { file: string }][]) {
    try {
      files[name] = resolveModelFile(v.file, path.dirname(abs), env);
    } catch (err) {
      problems.push(`variants.${name}.file: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ManifestError(abs, problems);
  return { ...parsed.data, manifest_file: abs, files };
}

/** Narrows a manifest to a detection manifest, with every problem named. */
export function asDetectionManifest(m: ModelManifest): DetectionManifest {
  const parsed = DETECTION_SCHEMA.safeParse(m);
  if (!parsed.success) throw new ManifestError(m.manifest_file, zodProblems(parsed.error));
  const d = parsed.data;
  if (d.output.strides?.some((s) => d.input.width % s !== 0 || d.input.height % s !== 0)) {
    throw new ManifestError(m.manifest_file, [`output.strides: every stride must divide the input size ${d.input.width}x${d.input.height}`]);
  }
  return { ...d, manifest_file: m.manifest_file, files: m.files };
}

export function loadDetectionManifest(file: string, env: NodeJS.ProcessEnv = process.env): DetectionManifest {
  return asDetectionManifest(loadManifest(file, env));
}

/** SHA-256 of a file, hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Throws a clear error when the variant's file is missing or its SHA-256 is not the manifest's. */
export async function verifySha256(m: ModelManifest, variant: VariantName): Promise<string> {
  const file = m.files[variant];
  const expected = m.variants[variant]?.sha256;
  if (file === undefined || expected === undefined) {
    throw new ManifestError(m.manifest_file, [`has no ${variant} variant (has: ${Object.keys(m.variants).join(", ")})`]);
  }
  let actual: string;
  try {
    actual = await sha256File(file);
  } catch (err) {
    throw new ManifestError(m.manifest_file, [`variants.${variant}.file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  if (actual !== expected) {
    throw new ManifestError(m.manifest_file, [
      `variants.${variant}.file ${file}: sha256 mismatch (manifest ${expected}, file ${actual}): corrupt or replaced model`,
    ]);
  }
  return file;
}
