import path from "node:path";
import { loadManifest, ManifestError, sha256Problem, variantFiles, type ModelManifest, type VariantName } from "../inference/manifest.js";
import { decoderOf, recognise, roleDeclared } from "./decoders/index.js";
import { asDetectionManifest, type DetectionManifest } from "./detectionManifest.js";
import { describeShapes, readModelGraph, type ModelGraph } from "./modelGraph.js";

/** Every problem of one model, in words; the manifest when it could be read. */
export interface ModelCheck {
  manifest?: ModelManifest;
  detection?: DetectionManifest;
  problems: string[];
}

function manifestProblems(err: unknown): string[] {
  return err instanceof ManifestError ? [...err.problems] : [(err as Error).message];
}

/**
 * What the model's graph says against what its manifest says: one fed input of [B, 3, H, W] at
 * the manifest's size and name, and outputs of the shapes the decoder needs for the labels and
 * strides the manifest lists.
 */
export function graphProblems(m: DetectionManifest, g: ModelGraph): string[] {
  const problems: string[] = [];
  if (g.inputs.length !== 1) {
    problems.push(`the model has ${g.inputs.length} inputs (${describeShapes(g.inputs)}); cityedge feeds one picture`);
  }
  const input = g.inputs.find((i) => i.name === m.input.name);
  if (!input) {
    problems.push(`the model has no input "${m.input.name}" (inputs: ${describeShapes(g.inputs)})`);
  } else {
    const [, c, h, w] = input.shape;
    if (input.shape.length !== 4)
      problems.push(`the model's input ${input.name} is [${input.shape.join(", ")}]; cityedge feeds [batch, 3, height, width]`);
    else {
      if (typeof c === "number" && c !== 3) problems.push(`the model's input ${input.name} has ${c} channels; cityedge feeds 3`);
      const sizeWrong = (typeof w === "number" && w !== m.input.width) || (typeof h === "number" && h !== m.input.height);
      if (sizeWrong) {
        problems.push(
          `the model's input ${input.name} is [${input.shape.join(", ")}] (${String(w)}x${String(h)}); the manifest says ${m.input.width}x${m.input.height}`,
        );
      }
    }
    if (input.type !== undefined && input.type !== "float") problems.push(`the model's input ${input.name} is ${input.type}; cityedge feeds float32`);
  }
  const decoder = decoderOf(m.output.decoder)!;
  const { outputs, problems: missing } = roleDeclared(m.output, g.outputs);
  problems.push(...missing);
  const layout = decoder.check(outputs, { inputWidth: m.input.width, inputHeight: m.input.height, numClasses: m.labels.length }, m.output);
  problems.push(...layout);
  if (layout.length > 0 || missing.length > 0) {
    // Name the layout the outputs do fit, when it is another decoder's.
    const fits = recognise({ inputWidth: m.input.width, inputHeight: m.input.height, outputs: g.outputs, ops: g.ops }).filter(
      (r) => r.decoder !== decoder.name,
    );
    if (fits.length === 1) problems.push(`the outputs fit decoder "${fits[0]!.decoder}": ${fits[0]!.reason}`);
  }
  return problems;
}

/**
 * Opens a model's manifest and checks it the way the daemon will use it: the manifest itself,
 * every file's SHA-256 (external data too) and, for a detector, its graph against the manifest.
 */
export async function checkModel(manifestFile: string, env: NodeJS.ProcessEnv = process.env): Promise<ModelCheck> {
  let manifest: ModelManifest;
  try {
    manifest = loadManifest(manifestFile, env);
  } catch (err) {
    return { problems: manifestProblems(err) };
  }
  const problems: string[] = [];
  let detection: DetectionManifest | undefined;
  if (manifest.task === "detection") {
    try {
      detection = asDetectionManifest(manifest);
    } catch (err) {
      problems.push(...manifestProblems(err));
    }
  }
  for (const variant of Object.keys(manifest.variants) as VariantName[]) {
    const files = variantFiles(manifest, variant);
    let ok = true;
    for (const f of files) {
      const p = await sha256Problem(f.file, f.sha256);
      if (p) {
        ok = false;
        problems.push(`${f.key} ${p}`);
      }
    }
    if (!ok || !detection) continue;
    let graph: ModelGraph;
    try {
      graph = readModelGraph(files[0]!.file);
    } catch (err) {
      problems.push(`variants.${variant}.file ${(err as Error).message}`);
      continue;
    }
    const listed = new Set(files.slice(1).map((f) => f.file));
    for (const ext of graph.externalData) {
      if (!listed.has(path.resolve(path.dirname(files[0]!.file), ext))) {
        problems.push(`variants.${variant}: the model keeps tensors in "${ext}", which external_data does not list (its sha256 is unchecked)`);
      }
    }
    const prefix = Object.keys(manifest.variants).length > 1 ? `${variant}: ` : "";
    problems.push(...graphProblems(detection, graph).map((p) => prefix + p));
  }
  return { manifest, ...(detection ? { detection } : {}), problems };
}
