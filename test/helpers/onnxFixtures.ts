import { writeFileSync } from "node:fs";
import path from "node:path";
import { encodeModel } from "../../runtime/onnx/encode.js";
import { makeTensor } from "../../runtime/onnx/tensor.js";
import { DataType, type OnnxAttribute, type OnnxNode, type OnnxTensor, type ValueInfo } from "../../runtime/onnx/types.js";

/** One output of a generated model: constant values, optionally shifted by the frame's mean brightness. */
export interface FixtureOutput {
  name: string;
  /** Dimensions; the first is the batch ("N" makes it dynamic). */
  shape: (number | "N")[];
  values: ArrayLike<number>;
  /** Added × the input's mean pixel value, per element (tells the frames of a batch apart). */
  mask?: ArrayLike<number>;
  type?: "float32" | "int64";
}

export interface FixtureSpec {
  input?: string;
  width: number;
  height: number;
  /** "N": a dynamic batch dimension (input and outputs). */
  batch?: 1 | "N";
  outputs: FixtureOutput[];
  /** metadata_props, e.g. Ultralytics' names / imgsz / stride / task. */
  metadata?: Record<string, string>;
  /** Extra operator types to put in the graph (an Exp marks a decoding head). */
  extraOps?: string[];
  opset?: number;
  /** Keep the constant tensors in an external-data file beside the model (`<name>.data` by writeFixtureModel). */
  externalData?: string;
}

const attr = (name: string, v: { ints?: bigint[]; i?: bigint; t?: OnnxTensor }): OnnxAttribute => ({
  name,
  ...(v.i !== undefined ? { i: v.i, type: 2 } : {}),
  ...(v.ints ? { type: 7 } : {}),
  ...(v.t ? { t: v.t, type: 4 } : {}),
  floats: [],
  ints: v.ints ?? [],
  strings: [],
  tensors: [],
  graphs: [],
  typeProtos: [],
  sparseTensors: [],
});

const node = (opType: string, input: string[], output: string[], attribute: OnnxAttribute[] = []): OnnxNode => ({
  opType,
  input,
  output,
  name: `${opType}_${output[0]}`,
  attribute,
  metadataProps: [],
});

function valueInfo(name: string, elemType: number, shape: (number | string)[]): ValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
    metadataProps: [],
  };
}

/**
 * An ONNX model (written with the project's own codec) whose outputs are known tensors: each
 * output = values + mask × mean(input frame). Small enough to build in every test run.
 */
export function fixtureModel(spec: FixtureSpec): Uint8Array {
  return fixtureFiles(spec).model;
}

/** The model's bytes, and its external data when `spec.externalData` names a file. */
export function fixtureFiles(spec: FixtureSpec): { model: Uint8Array; data?: Uint8Array } {
  const input = spec.input ?? "images";
  const batch = spec.batch ?? 1;
  const nodes: OnnxNode[] = [node("ReduceMean", [input], ["mean4"], [attr("axes", { ints: [1n, 2n, 3n] }), attr("keepdims", { i: 1n })])];
  const inits: OnnxTensor[] = [];
  const outputs: ValueInfo[] = [];
  for (const o of spec.outputs) {
    const rest = o.shape.slice(1) as number[];
    const count = rest.reduce((a, b) => a * b, 1);
    if (o.values.length !== count) throw new Error(`${o.name}: ${o.values.length} values for [${o.shape.join(", ")}]`);
    inits.push(makeTensor(`${o.name}__values`, DataType.FLOAT, [1, ...rest], Float32Array.from(o.values)));
    inits.push(makeTensor(`${o.name}__mask`, DataType.FLOAT, [1, ...rest], Float32Array.from(o.mask ?? new Array<number>(count).fill(0))));
    inits.push(makeTensor(`${o.name}__shape`, DataType.INT64, [o.shape.length], BigInt64Array.from([-1n, ...rest.map(() => 1n)])));
    nodes.push(node("Reshape", ["mean4", `${o.name}__shape`], [`${o.name}__mean`]));
    nodes.push(node("Mul", [`${o.name}__mean`, `${o.name}__mask`], [`${o.name}__shift`]));
    const float = o.type === "int64" ? `${o.name}__float` : o.name;
    nodes.push(node("Add", [`${o.name}__values`, `${o.name}__shift`], [float]));
    if (o.type === "int64") nodes.push(node("Cast", [float], [o.name], [attr("to", { i: BigInt(DataType.INT64) })]));
    outputs.push(valueInfo(o.name, o.type === "int64" ? DataType.INT64 : DataType.FLOAT, [batch === "N" ? "N" : 1, ...rest]));
  }
  for (const [i, op] of (spec.extraOps ?? []).entries()) {
    // A side branch the outputs do not use: it only has to be in the graph.
    nodes.push(node(op, ["mean4"], [`extra_${i}`]));
  }
  const model = {
    irVersion: 7,
    producerName: "cityedge-test",
    graph: {
      name: "fixture",
      node: nodes,
      initializer: inits,
      sparseInitializer: [],
      input: [valueInfo(input, DataType.FLOAT, [batch === "N" ? "N" : 1, 3, spec.height, spec.width])],
      output: outputs,
      valueInfo: [],
      metadataProps: [],
    },
    opsetImport: [{ domain: "", version: spec.opset ?? 13 }],
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  if (!spec.externalData) return { model: encodeModel(model) };
  // Every `__values` tensor moves to the data file, one after another.
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of inits) {
    if (!t.name?.endsWith("__values") || !t.rawData) continue;
    const bytes = t.rawData;
    t.externalData = [
      { key: "location", value: spec.externalData },
      { key: "offset", value: String(offset) },
      { key: "length", value: String(bytes.length) },
    ];
    t.dataLocation = 1;
    delete t.rawData;
    chunks.push(bytes);
    offset += bytes.length;
  }
  const data = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { model: encodeModel(model), data };
}

export function writeFixtureModel(dir: string, name: string, spec: FixtureSpec): string {
  const file = path.join(dir, `${name}.onnx`);
  const { model, data } = fixtureFiles(spec);
  writeFileSync(file, model);
  if (data && spec.externalData) writeFileSync(path.join(dir, spec.externalData), data);
  return file;
}

/** A seeded PRNG (mulberry32): the same fixtures every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
