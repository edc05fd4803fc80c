/**
 * `cityedge models add`'s engine: reads an ONNX file's interface (its own protobuf, no session),
 * recognises the output layout, and writes a manifest the daemon can load, with the sha256 of
 * every file; then tries the model on a real still.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sha256File } from "../inference/manifest.js";
import { DECODERS, DECODER_NAMES, recognise, type DecoderName, type Recognised } from "./decoders/index.js";
import { asDetectionManifest, type DetectionManifest } from "./detectionManifest.js";
import { COCO_LABELS, isCoco } from "./labels.js";
import { describeShapes, readModelGraph, type ModelGraph } from "./modelGraph.js";

/** A model that cannot be added, with everything the user needs to know why. */
export class AddModelError extends Error {
  override readonly name = "AddModelError";
}

export interface AddModelOptions {
  /** Model id (default: the file's name). */
  id?: string;
  /** "coco", or a file with one label per line (or a JSON array). Default: the model's own names, else COCO for 80 classes. */
  labels?: string;
  /** Folder for the manifest and the model's files (default: models/<id> under the working directory). */
  out?: string;
  /** Input size for a model whose input is dynamic and whose metadata does not say. */
  size?: { width: number; height: number };
  /** Take this layout, when the graph's shapes fit it. */
  decoder?: DecoderName;
  letterbox?: "top-left" | "center";
  color?: "rgb" | "bgr";
  /** Replace an existing manifest. */
  force?: boolean;
  /** Extra keys for the manifest (a catalogue entry's source and licence). */
  extra?: Record<string, unknown>;
}

export interface AddedModel {
  manifestFile: string;
  manifest: DetectionManifest;
  decoder: DecoderName;
  reason: string;
  labelsFrom: string;
  graph: ModelGraph;
  files: string[];
}

/** The still `models add` tries a model on (a real street scene, shipped with the app). */
export const STILL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../models/stills/street.jpg");

/** Ultralytics writes `names` as a Python dict: {0: 'person', 1: 'bicycle', …}. JSON is taken too. */
export function parseNames(text: string): string[] | undefined {
  const t = text.trim();
  if (t.startsWith("[")) {
    try {
      const a = JSON.parse(t) as unknown;
      if (Array.isArray(a) && a.every((x) => typeof x === "string")) return a;
    } catch {
      return undefined;
    }
  }
  const out: string[] = [];
  const re = /(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g;
  for (const m of t.matchAll(re)) out[Number(m[1])] = (m[2] ?? m[3] ?? "").replace(/\\(.)/g, "$1");
  for (let i = 0; i < out.length; i++) if (out[i] === undefined) return undefined;
  if (out.length === 0) return undefined;
  return out;
}

/** `imgsz` "[640, 640]" (height, width) or "640". */
function parseImgsz(text: string | undefined): { width: number; height: number } | undefined {
  if (text === undefined) return undefined;
  const nums = text.match(/\d+/g)?.map(Number) ?? [];
  if (nums.length === 1) return { width: nums[0]!, height: nums[0]! };
  if (nums.length === 2) return { width: nums[1]!, height: nums[0]! };
  return undefined;
}

function knownLayouts(): string {
  return DECODER_NAMES.map((n) => `  ${n}: ${DECODERS[n].layout}`).join("\n");
}

function readLabels(arg: string): { labels: string[]; from: string } {
  if (arg === "coco") return { labels: [...COCO_LABELS], from: "COCO (--labels coco)" };
  let text: string;
  try {
    text = readFileSync(arg, "utf8");
  } catch (err) {
    throw new AddModelError(`--labels ${arg}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : (err as Error).message}`);
  }
  const t = text.trim();
  const labels = t.startsWith("[")
    ? (JSON.parse(t) as string[])
    : t
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l !== "");
  if (labels.length === 0 || labels.some((l) => typeof l !== "string" || l === ""))
    throw new AddModelError(`--labels ${arg}: no labels (one per line, or a JSON array of strings)`);
  return { labels, from: `${arg} (--labels)` };
}

/** Pre-processing by family, as the exporters' own demos do it (every key can be edited in the manifest). */
function inputDefaults(
  decoder: DecoderName,
  output: Record<string, unknown>,
): { color: "rgb" | "bgr"; scale: number; mean: number[]; std: number[]; letterbox: "top-left" | "center" } {
  const yoloxFamily = decoder === "yolox" || (decoder === "yolov5" && output.anchors_per_cell === 1);
  if (yoloxFamily) return { color: "bgr", scale: 1, mean: [0, 0, 0], std: [1, 1, 1], letterbox: "top-left" };
  if (decoder === "nanodet" || decoder === "nanodet-plus") {
    return { color: "bgr", scale: 1, mean: [103.53, 116.28, 123.675], std: [57.375, 57.12, 58.395], letterbox: "top-left" };
  }
  if (decoder === "ssd") return { color: "rgb", scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], letterbox: "top-left" };
  // Ultralytics (YOLOv5/v8/v10/11, RT-DETR): RGB 0..1, the picture centred in the letterbox.
  return { color: "rgb", scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], letterbox: "center" };
}

/** Finds the model's input geometry: [B, 3, H, W], from the graph, else its metadata, else `size`. */
function inputOf(g: ModelGraph, o: AddModelOptions): { name: string; width: number; height: number } {
  const seen = `inputs: ${describeShapes(g.inputs)}`;
  if (g.inputs.length !== 1)
    throw new AddModelError(`the model has ${g.inputs.length} inputs (${describeShapes(g.inputs)}); cityedge feeds one picture`);
  const input = g.inputs[0]!;
  if (input.type !== undefined && input.type !== "float") {
    throw new AddModelError(`the model's input ${input.name} is ${input.type}; cityedge feeds float32 pictures (${seen})`);
  }
  if (input.shape.length !== 4)
    throw new AddModelError(`the model's input ${input.name} is [${input.shape.join(", ")}]; cityedge feeds [batch, 3, height, width]`);
  const [, c, h, w] = input.shape;
  if (c !== 3 && input.shape[3] === 3)
    throw new AddModelError(
      `the model's input ${input.name} is [${input.shape.join(", ")}], channels last (NHWC); cityedge feeds NCHW [batch, 3, height, width]`,
    );
  if (typeof c === "number" && c !== 3) throw new AddModelError(`the model's input ${input.name} has ${c} channels; cityedge feeds 3`);
  if (typeof w === "number" && typeof h === "number" && w > 0 && h > 0) {
    if (o.size && (o.size.width !== w || o.size.height !== h))
      throw new AddModelError(`--size ${o.size.width}x${o.size.height}: the model's input is fixed at ${w}x${h}`);
    return { name: input.name, width: w, height: h };
  }
  const size = o.size ?? parseImgsz(g.metadata.imgsz);
  if (!size)
    throw new AddModelError(
      `the model's input ${input.name} [${input.shape.join(", ")}] has a dynamic size and its metadata gives none: pass --size WIDTHxHEIGHT`,
    );
  return { name: input.name, ...size };
}

/** With the input size known, dynamic output dimensions that follow from it cannot be told; fixed ones are used. */
function layoutOf(g: ModelGraph, width: number, height: number, o: AddModelOptions): Recognised & { decoder: DecoderName } {
  const stride = Number(g.metadata.stride);
  const facts = {
    inputWidth: width,
    inputHeight: height,
    outputs: g.outputs,
    ops: g.ops,
    ...(Number.isFinite(stride) && stride > 0 ? { maxStride: stride } : {}),
  };
  const found = recognise(facts);
  const seen = `outputs: ${describeShapes(g.outputs)}; input ${width}x${height}`;
  if (o.decoder) {
    const r = found.find((f) => f.decoder === o.decoder);
    if (!r) throw new AddModelError(`the outputs do not fit decoder ${o.decoder} (${DECODERS[o.decoder].layout}); ${seen}`);
    return r;
  }
  if (found.length === 0) throw new AddModelError(`no known output layout fits this model (${seen}).\nKnown layouts:\n${knownLayouts()}`);
  if (found.length > 1) {
    throw new AddModelError(
      `the outputs fit several layouts (${found.map((f) => `${f.decoder}: ${f.reason}`).join("; ")}): pass --decoder ${found.map((f) => f.decoder).join("|")}`,
    );
  }
  return found[0]!;
}

const sanitize = (s: string) => s.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "") || "model";

/**
 * Reads `file`, recognises its layout and writes `<out>/manifest.json` with the model (and its
 * external-data files) copied beside it. Throws {@link AddModelError} naming what was seen
 * when the model does not fit.
 */
export async function addModel(file: string, o: AddModelOptions = {}): Promise<AddedModel> {
  let g: ModelGraph;
  try {
    g = readModelGraph(file);
  } catch (err) {
    throw new AddModelError((err as Error).message);
  }
  const task = g.metadata.task;
  if (task !== undefined && task !== "detect" && task !== "detection") {
    throw new AddModelError(`the model's metadata says task "${task}"; cityedge runs detection models only (outputs: ${describeShapes(g.outputs)})`);
  }
  const input = inputOf(g, o);
  const layout = layoutOf(g, input.width, input.height, o);
  let labels: string[];
  let labelsFrom: string;
  const names = g.metadata.names !== undefined ? parseNames(g.metadata.names) : undefined;
  if (o.labels) ({ labels, from: labelsFrom } = readLabels(o.labels));
  else if (names) {
    labels = names;
    labelsFrom = "the model's metadata (names)";
  } else if (layout.numClasses === 80 || layout.numClasses === undefined) {
    labels = [...COCO_LABELS];
    labelsFrom =
      layout.numClasses === 80
        ? "COCO: 80 classes and no names in the model (pass --labels FILE if they are others)"
        : "COCO: the layout carries class ids only and the model names none (pass --labels FILE if they are others)";
  } else {
    throw new AddModelError(`the model has ${layout.numClasses} classes and names none in its metadata: pass --labels FILE (one label per line)`);
  }
  if (layout.numClasses !== undefined && labels.length !== layout.numClasses) {
    throw new AddModelError(`the model has ${layout.numClasses} classes; ${labelsFrom} gives ${labels.length} labels`);
  }
  const id = sanitize(o.id ?? path.basename(file).replace(/\.onnx$/i, ""));
  const out = path.resolve(o.out ?? path.join("models", id));
  const manifestFile = path.join(out, "manifest.json");
  if (existsSync(manifestFile) && !o.force) throw new AddModelError(`${manifestFile} exists already (--force replaces it)`);
  mkdirSync(out, { recursive: true });
  // The model and its external data go beside the manifest, keeping their relative places.
  const srcDir = path.dirname(path.resolve(file));
  const copied: string[] = [];
  for (const rel of [path.basename(file), ...g.externalData]) {
    const from = path.resolve(srcDir, rel);
    const to = path.resolve(out, rel);
    if (!existsSync(from)) throw new AddModelError(`the model keeps tensors in "${rel}", which is not beside it (${from})`);
    if (from !== to) {
      mkdirSync(path.dirname(to), { recursive: true });
      copyFileSync(from, to);
    }
    copied.push(to);
  }
  const defaults = inputDefaults(layout.decoder, layout.output);
  const ext = await Promise.all(g.externalData.map(async (rel) => ({ file: rel, sha256: await sha256File(path.resolve(out, rel)) })));
  const raw = {
    id,
    version: g.metadata.version ?? "1",
    task: "detection",
    description: g.metadata.description ?? `added by cityedge models add from ${path.basename(file)}`,
    ...(isCoco(labels) ? { domain: "coco" } : {}),
    variants: { fp32: { file: path.basename(file), sha256: await sha256File(copied[0]!), ...(ext.length > 0 ? { external_data: ext } : {}) } },
    input: {
      name: input.name,
      layout: "NCHW",
      width: input.width,
      height: input.height,
      color: o.color ?? defaults.color,
      scale: defaults.scale,
      mean: defaults.mean,
      std: defaults.std,
      letterbox: o.letterbox ?? defaults.letterbox,
      letterbox_pad: 114,
    },
    output: layout.output,
    labels,
    thresholds: { score: 0.3, nms_iou: 0.45 },
    source: {
      file: path.resolve(file),
      ...(g.producer ? { producer: g.producer } : {}),
      ...(g.opset !== undefined ? { opset: g.opset } : {}),
      layout: layout.reason,
      labels: labelsFrom,
      ...(Object.keys(g.metadata).length > 0 ? { metadata: Object.fromEntries(Object.entries(g.metadata).filter(([k]) => k !== "names")) } : {}),
    },
    ...o.extra,
  };
  // The manifest written must load: the daemon's own parser checks it here.
  const manifest = asDetectionManifest({
    ...(raw as unknown as Parameters<typeof asDetectionManifest>[0]),
    manifest_file: manifestFile,
    files: { fp32: copied[0]! },
  });
  writeFileSync(manifestFile, `${JSON.stringify(raw, null, 2)}\n`);
  return { manifestFile, manifest, decoder: layout.decoder, reason: layout.reason, labelsFrom, graph: g, files: copied };
}
