import { z } from "zod";
import { BASE_SCHEMA, loadManifest, ManifestError, zodProblems, type ModelManifest } from "../inference/manifest.js";
import { DECODER_NAMES, decoderOf, outputRoles, type BaseOutput } from "./decoders/index.js";

const TRIPLE = z.tuple([z.number(), z.number(), z.number()]);

export const DETECTION_INPUT_SCHEMA = z.strictObject({
  name: z.string().min(1).describe("Input tensor name"),
  layout: z.literal("NCHW").describe("Tensor layout"),
  width: z.number().int().min(8).max(8192),
  height: z.number().int().min(8).max(8192),
  color: z.enum(["rgb", "bgr"]).describe("Channel order the model expects"),
  scale: z.number().positive().describe("Pixel values (0..255) are multiplied by this first"),
  mean: TRIPLE.describe("Per-channel mean subtracted after scaling, in the model's channel order"),
  std: TRIPLE.refine((t) => t.every((v) => v > 0), "std values must be > 0").describe("Per-channel divisor applied last"),
  letterbox: z
    .enum(["top-left", "center"])
    .default("top-left")
    .describe("Where the scaled picture sits in the input, as the model was trained (Ultralytics: center; YOLOX, NanoDet: top-left)"),
  letterbox_pad: z.number().int().min(0).max(255).default(114).describe("Grey value of the letterbox padding"),
});

const OUTPUT_HEAD = z.looseObject({
  decoder: z
    .string()
    .refine((d) => decoderOf(d) !== undefined, { error: (i) => `unknown decoder "${String(i.input)}" (known: ${DECODER_NAMES.join(", ")})` }),
});

const DETECTION_SCHEMA = BASE_SCHEMA.extend({
  task: z.literal("detection"),
  domain: z
    .string()
    .min(1)
    .optional()
    .describe('What the model was trained on: "coco" (real photos, 80 classes), "synthetic" (our rendered scenes: demos only), or another name'),
  input: DETECTION_INPUT_SCHEMA,
  output: OUTPUT_HEAD,
  labels: z.array(z.string().min(1)).min(1),
  thresholds: z.strictObject({ score: z.number().min(0).max(1), nms_iou: z.number().min(0).max(1) }),
});

export type DetectionInput = z.output<typeof DETECTION_INPUT_SCHEMA>;
export type DetectionManifest = z.output<typeof DETECTION_SCHEMA> &
  Pick<ModelManifest, "manifest_file" | "files"> & {
    /** Parsed by its decoder's schema (defaults applied). */
    output: BaseOutput & Record<string, unknown>;
  };

/** Narrows a manifest to a detection manifest, with every problem named (the decoder's own keys included). */
export function asDetectionManifest(m: ModelManifest): DetectionManifest {
  const parsed = DETECTION_SCHEMA.safeParse(m);
  if (!parsed.success) throw new ManifestError(m.manifest_file, zodProblems(parsed.error));
  const d = parsed.data;
  const decoder = decoderOf(d.output.decoder)!;
  const out = decoder.schema.safeParse(d.output);
  if (!out.success)
    throw new ManifestError(
      m.manifest_file,
      zodProblems(out.error).map((p) => `output.${p}`),
    );
  const output = out.data as BaseOutput & Record<string, unknown>;
  const problems = outputRoles(output).problems.map((p) => `output.${p}`);
  const strides = output.strides as number[] | undefined;
  if (decoder.stridesDivideInput && strides?.some((s) => d.input.width % s !== 0 || d.input.height % s !== 0)) {
    problems.push(`output.strides: every stride must divide the input size ${d.input.width}x${d.input.height}`);
  }
  if (problems.length > 0) throw new ManifestError(m.manifest_file, problems);
  return { ...d, output, manifest_file: m.manifest_file, files: m.files };
}

export function loadDetectionManifest(file: string, env: NodeJS.ProcessEnv = process.env): DetectionManifest {
  return asDetectionManifest(loadManifest(file, env));
}
