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
  external_data: z
    .array(
      z.strictObject({
        file: z.string().min(1).describe("A file the model's tensors are stored in, relative to the .onnx file"),
        sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits"),
      }),
    )
    .optional()
    .describe("The model's external-data files (large models keep their weights beside the .onnx), each checked at load"),
});

/** What every manifest has, whatever its task; the task adds its own keys (detection: runtime/detect/detectionManifest.ts). */
export const BASE_SCHEMA = z.looseObject({
  id: z.string().min(1),
  version: z.union([z.string().min(1), z.number()]),
  task: z.string().min(1),
  variants: z
    .partialRecord(z.enum(VARIANTS), VARIANT_SCHEMA)
    .refine((v) => Object.keys(v).length > 0, "must list at least one of fp32, fp16, int8, int8_sym"),
});

export type ModelManifest = z.output<typeof BASE_SCHEMA> & {
  /** Absolute path of the manifest file. */
  manifest_file: string;
  /** Variant files resolved to absolute paths. */
  files: Partial<Record<VariantName, string>>;
};

/** A manifest that cannot be used: names the file and every problem in it. */
export class ManifestError extends Error {
  readonly file: string;
  readonly problems: readonly string[];

  constructor(file: string, problems: string[]) {
    super(`model manifest ${file}: ${problems.join("; ")}`);
    this.name = "ManifestError";
    this.file = file;
    this.problems = problems;
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

export function zodProblems(err: z.ZodError): string[] {
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

/** SHA-256 of a file, hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Every file of a variant with the SHA-256 the manifest gives it: the .onnx, then its external-data files. */
export function variantFiles(m: ModelManifest, variant: VariantName): { key: string; file: string; sha256: string }[] {
  const file = m.files[variant];
  const v = m.variants[variant];
  if (file === undefined || v === undefined) return [];
  return [
    { key: `variants.${variant}.file`, file, sha256: v.sha256 },
    ...(v.external_data ?? []).map((e, i) => ({
      key: `variants.${variant}.external_data[${i}]`,
      file: path.resolve(path.dirname(file), e.file),
      sha256: e.sha256,
    })),
  ];
}

/** Why a file's SHA-256 is not the one expected (missing, unreadable, other content), or undefined when it is. */
export async function sha256Problem(file: string, expected: string): Promise<string | undefined> {
  let actual: string;
  try {
    actual = await sha256File(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return `${file}: ${code === "ENOENT" ? "file not found" : (code ?? (err as Error).message)}`;
  }
  return actual === expected ? undefined : `${file}: sha256 mismatch (manifest ${expected}, file ${actual}): corrupt or replaced model`;
}

/**
 * Throws a clear error when a file of the variant (the .onnx or one of its external-data files)
 * is missing or its SHA-256 is not the manifest's. Returns the .onnx file.
 */
export async function verifySha256(m: ModelManifest, variant: VariantName): Promise<string> {
  const files = variantFiles(m, variant);
  if (files.length === 0) throw new ManifestError(m.manifest_file, [`has no ${variant} variant (has: ${Object.keys(m.variants).join(", ")})`]);
  const problems: string[] = [];
  for (const f of files) {
    const p = await sha256Problem(f.file, f.sha256);
    if (p) problems.push(`${f.key} ${p}`);
  }
  if (problems.length > 0) throw new ManifestError(m.manifest_file, problems);
  return files[0]!.file;
}
