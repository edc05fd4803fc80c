import { AttributeType, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor, type ValueInfo } from "./types.js";

const TEXT_DECODER = new TextDecoder("utf-8");
const TEXT_ENCODER = new TextEncoder();

/** The opset version a model imports for `domain` ("" or "ai.onnx" for the default domain). */
export function opsetVersion(model: OnnxModel, domain = ""): number | undefined {
  const want = domain === "ai.onnx" ? "" : domain;
  const entry = model.opsetImport.find((o) => (o.domain === "ai.onnx" ? "" : (o.domain ?? "")) === want);
  return entry?.version;
}

/** `metadata_props` as a plain record (a key repeated keeps its last value). */
export function metadataRecord(model: OnnxModel): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of model.metadataProps) if (e.key !== undefined) out[e.key] = e.value ?? "";
  return out;
}

/** A value's tensor shape: numbers for fixed sizes, names for symbolic ones, null for unknown; undefined when the rank is unknown. */
export function valueShape(v: ValueInfo): (number | string | null)[] | undefined {
  const shape = v.type?.tensorType?.shape;
  if (!shape) return undefined;
  return shape.dim.map((d) => d.dimValue ?? d.dimParam ?? null);
}

/** A value's element type (TensorProto.DataType code), or undefined when it is not a tensor. */
export function valueElemType(v: ValueInfo): number | undefined {
  return v.type?.tensorType?.elemType;
}

/** The graph's real inputs: those not also listed as initializers (older exporters list weights as inputs). */
export function graphInputs(model: OnnxModel): ValueInfo[] {
  const init = new Set(model.graph.initializer.map((t) => t.name));
  return model.graph.input.filter((v) => !init.has(v.name));
}

/** The distinct operator types of the main graph and its subgraphs, as `op` or `domain:op`. */
export function operatorTypes(model: OnnxModel): Set<string> {
  const out = new Set<string>();
  const walk = (nodes: readonly OnnxNode[]): void => {
    for (const n of nodes) {
      const d = n.domain && n.domain !== "ai.onnx" ? `${n.domain}:` : "";
      out.add(`${d}${n.opType ?? ""}`);
      for (const a of n.attribute) {
        if (a.g) walk(a.g.node);
        for (const g of a.graphs) walk(g.node);
      }
    }
  };
  walk(model.graph.node);
  return out;
}

export function getAttribute(node: OnnxNode, name: string): OnnxAttribute | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** An INT attribute as a number (throws when it does not fit one), or `fallback` when absent. */
export function attrInt(node: OnnxNode, name: string, fallback?: number): number | undefined {
  const a = getAttribute(node, name);
  if (a?.i === undefined) return fallback;
  return safe(a.i, node, name);
}

export function attrInts(node: OnnxNode, name: string): number[] | undefined {
  const a = getAttribute(node, name);
  if (!a || (a.type !== AttributeType.INTS && a.ints.length === 0)) return undefined;
  return a.ints.map((v) => safe(v, node, name));
}

export function attrFloat(node: OnnxNode, name: string, fallback?: number): number | undefined {
  return getAttribute(node, name)?.f ?? fallback;
}

export function attrString(node: OnnxNode, name: string, fallback?: string): string | undefined {
  const s = getAttribute(node, name)?.s;
  return s === undefined ? fallback : TEXT_DECODER.decode(s);
}

/** Attribute builders (each sets `type`, as IR version 2 and later require). */
export const attr = {
  int: (name: string, v: number | bigint): OnnxAttribute => ({ ...emptyAttr(name, AttributeType.INT), i: BigInt(v) }),
  ints: (name: string, v: readonly (number | bigint)[]): OnnxAttribute => ({ ...emptyAttr(name, AttributeType.INTS), ints: v.map((x) => BigInt(x)) }),
  float: (name: string, v: number): OnnxAttribute => ({ ...emptyAttr(name, AttributeType.FLOAT), f: v }),
  floats: (name: string, v: readonly number[]): OnnxAttribute => ({ ...emptyAttr(name, AttributeType.FLOATS), floats: [...v] }),
  string: (name: string, v: string): OnnxAttribute => ({ ...emptyAttr(name, AttributeType.STRING), s: TEXT_ENCODER.encode(v) }),
  tensor: (name: string, t: OnnxTensor): OnnxAttribute => ({ ...emptyAttr(name, AttributeType.TENSOR), t }),
};

/** A node with the given fields and empty lists for the rest. */
export function makeNode(
  opType: string,
  input: string[],
  output: string[],
  name: string,
  attribute: OnnxAttribute[] = [],
  domain?: string,
): OnnxNode {
  return { opType, input, output, name, attribute, metadataProps: [], ...(domain !== undefined ? { domain } : {}) };
}

function emptyAttr(name: string, type: number): OnnxAttribute {
  return { name, type, floats: [], ints: [], strings: [], tensors: [], graphs: [], typeProtos: [], sparseTensors: [] };
}

function safe(v: bigint, node: OnnxNode, name: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`node "${node.name ?? node.opType ?? ""}": attribute ${name} = ${v} does not fit a number`);
  return n;
}
