import { readFileSync } from "node:fs";
import { decodeModel } from "../onnx/decode.js";
import { dataTypeName, externalDataFiles } from "../onnx/tensor.js";
import type { ValueInfo } from "../onnx/types.js";
import type { DeclaredOutput } from "./decoders/index.js";

/** What a detector's ONNX file says about itself, read from its protobuf (no session needed). */
export interface ModelGraph {
  file: string;
  /** Graph inputs that are fed (initializers listed as inputs by old exporters left out). */
  inputs: DeclaredOutput[];
  outputs: DeclaredOutput[];
  /** Operator types in the graph (the main graph; subgraphs of If/Loop are not searched). */
  ops: Set<string>;
  /** `metadata_props` (Ultralytics keeps names, imgsz, stride, task there). */
  metadata: Record<string, string>;
  /** Default-domain opset. */
  opset?: number;
  producer?: string;
  /** External-data files, relative to the model file, each once. */
  externalData: string[];
}

function declared(v: ValueInfo): DeclaredOutput {
  const t = v.type?.tensorType;
  const shape = t?.shape?.dim.map((d) => d.dimValue ?? d.dimParam ?? "?") ?? [];
  return { name: v.name ?? "", shape, type: dataTypeName(t?.elemType) };
}

/** Reads an ONNX file's interface; throws naming the file when it is not an ONNX model. */
export function readModelGraph(file: string): ModelGraph {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${file}: ${code === "ENOENT" ? "file not found" : (code ?? (err as Error).message)}`);
  }
  let model;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new Error(`${file}: not an ONNX model (${(err as Error).message})`);
  }
  const g = model.graph;
  if (g.node.length === 0 && g.output.length === 0) throw new Error(`${file}: not an ONNX model (no graph)`);
  const inits = new Set(g.initializer.map((t) => t.name));
  const metadata: Record<string, string> = {};
  for (const e of model.metadataProps) if (e.key !== undefined) metadata[e.key] = e.value ?? "";
  const opset = model.opsetImport.find((o) => o.domain === undefined || o.domain === "" || o.domain === "ai.onnx")?.version;
  return {
    file,
    inputs: g.input.filter((i) => !inits.has(i.name)).map(declared),
    outputs: g.output.map(declared),
    ops: new Set(g.node.map((n) => n.opType ?? "")),
    metadata,
    ...(opset !== undefined ? { opset } : {}),
    ...(model.producerName ? { producer: `${model.producerName}${model.producerVersion ? ` ${model.producerVersion}` : ""}` } : {}),
    externalData: externalDataFiles(model),
  };
}

export const describeShapes = (list: readonly DeclaredOutput[]) =>
  list.map((o) => `${o.name} [${o.shape.join(", ")}]${o.type ? ` ${o.type}` : ""}`).join(", ");
