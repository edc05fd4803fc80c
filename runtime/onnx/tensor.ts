import { openSync, readSync, closeSync, fstatSync } from "node:fs";
import path from "node:path";
import { DataLocation, DataType, type OnnxGraph, type OnnxModel, type OnnxTensor, type StringEntry } from "./types.js";

export type TensorValues =
  Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

const ELEM_NAMES = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;

/** "float", "int8", … for a TensorProto.DataType code; "type N" for one this codec does not know. */
export function dataTypeName(code: number | undefined): string {
  return (code !== undefined && ELEM_NAMES[code]) || `type ${code ?? "undefined"}`;
}

/** Bytes per element of the fixed-size types, as raw_data stores them (little-endian). */
export function dataTypeSize(code: number): number | undefined {
  switch (code) {
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 4;
    case DataType.DOUBLE:
    case DataType.INT64:
    case DataType.UINT64:
    case DataType.COMPLEX64:
      return 8;
    case DataType.INT8:
    case DataType.UINT8:
    case DataType.BOOL:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
      return 1;
    case DataType.INT16:
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return 2;
    case DataType.COMPLEX128:
      return 16;
    default:
      return undefined;
  }
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** A tensor's external-data reference (`dataLocation` EXTERNAL), or undefined when its data is inline. */
export interface ExternalDataRef {
  location: string;
  offset: number;
  /** Absent: to the end of the file. */
  length?: number;
  checksum?: string;
}

export function externalDataRef(t: OnnxTensor): ExternalDataRef | undefined {
  if (t.dataLocation !== DataLocation.EXTERNAL) return undefined;
  const get = (k: string): string | undefined => t.externalData.find((e: StringEntry) => e.key === k)?.value;
  const location = get("location");
  if (!location) throw new Error(`tensor "${t.name ?? ""}": external data without a location`);
  const num = (k: string): number | undefined => {
    const v = get(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`tensor "${t.name ?? ""}": external data ${k} must be a non-negative integer, got "${v}"`);
    return n;
  };
  const length = num("length");
  const checksum = get("checksum");
  return { location, offset: num("offset") ?? 0, ...(length !== undefined ? { length } : {}), ...(checksum !== undefined ? { checksum } : {}) };
}

/**
 * Where an external-data location points, inside `modelDir`. A location that is absolute or
 * climbs out of the model's folder is refused (onnxruntime refuses it too): a model file must not
 * make the device read arbitrary files.
 */
export function resolveExternalPath(modelDir: string, location: string): string {
  if (path.isAbsolute(location) || location.includes("\0"))
    throw new Error(`external data location "${location}" must be a relative path inside the model's folder`);
  const full = path.resolve(modelDir, location);
  const rel = path.relative(path.resolve(modelDir), full);
  if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) throw new Error(`external data location "${location}" leaves the model's folder`);
  return full;
}

/** Every tensor in a graph and its subgraphs (initializers, Constant values, attribute tensors). */
export function* allTensors(graph: OnnxGraph): Generator<OnnxTensor> {
  for (const t of graph.initializer) yield t;
  for (const s of graph.sparseInitializer) {
    if (s.values) yield s.values;
    if (s.indices) yield s.indices;
  }
  for (const n of graph.node) {
    for (const a of n.attribute) {
      if (a.t) yield a.t;
      yield* a.tensors;
      if (a.g) yield* allTensors(a.g);
      for (const g of a.graphs) yield* allTensors(g);
    }
  }
}

/** The files a model's external data lives in (relative locations, each once, in first-use order). */
export function externalDataFiles(model: OnnxModel): string[] {
  const seen = new Set<string>();
  for (const t of allTensors(model.graph)) {
    const ref = externalDataRef(t);
    if (ref) seen.add(ref.location);
  }
  return [...seen];
}

/**
 * A tensor's data as stored: `rawData`, or the bytes its external reference names (read from
 * `modelDir`), or undefined when it uses the typed fields (`floatData`, `int32Data`, …).
 */
export function tensorRawBytes(t: OnnxTensor, modelDir?: string): Uint8Array | undefined {
  const ref = externalDataRef(t);
  if (!ref) return t.rawData;
  if (modelDir === undefined)
    throw new Error(`tensor "${t.name ?? ""}" keeps its data in "${ref.location}": the model's folder is needed to read it`);
  const file = resolveExternalPath(modelDir, ref.location);
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    const length = ref.length ?? size - ref.offset;
    if (ref.offset + length > size) {
      throw new Error(`tensor "${t.name ?? ""}": external data ${ref.location} holds ${size} bytes, ${ref.offset}+${length} wanted`);
    }
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, length - done, ref.offset + done);
      if (n === 0) throw new Error(`tensor "${t.name ?? ""}": external data ${ref.location} ended early`);
      done += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * A tensor's values as a typed array of its own type (a copy; aligned), from raw bytes, external
 * data or the typed fields. FLOAT16/BFLOAT16 come back as their 16-bit patterns (Uint16Array).
 */
export function tensorValues(t: OnnxTensor, modelDir?: string): TensorValues {
  const type = t.dataType ?? DataType.UNDEFINED;
  const count = elementCount(t.dims);
  const raw = tensorRawBytes(t, modelDir);
  const make = arrayFor(type, t.name);
  if (raw) {
    const size = dataTypeSize(type)!;
    if (raw.length !== count * size) {
      throw new Error(
        `tensor "${t.name ?? ""}": ${raw.length} bytes of data for ${count} ${dataTypeName(type)} values of shape [${t.dims.join(", ")}]`,
      );
    }
    // A copy (Buffer's slice() would be a view), which also aligns it for the typed array.
    const copy = new Uint8Array(raw);
    return make(copy.buffer, count);
  }
  const out = make(new ArrayBuffer(count * dataTypeSize(type)!), count);
  const source: ArrayLike<number | bigint> = pickTyped(t, type);
  if (source.length !== count) {
    throw new Error(`tensor "${t.name ?? ""}": ${source.length} values for shape [${t.dims.join(", ")}] (${count})`);
  }
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) for (let i = 0; i < count; i++) out[i] = BigInt(source[i]!);
  else for (let i = 0; i < count; i++) out[i] = Number(source[i]!);
  return out;
}

/** A FLOAT tensor's values. */
export function tensorFloat32(t: OnnxTensor, modelDir?: string): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new Error(`tensor "${t.name ?? ""}" is ${dataTypeName(t.dataType)}, not float`);
  return tensorValues(t, modelDir) as Float32Array;
}

/** A new tensor holding `values` as raw little-endian bytes. */
export function makeTensor(name: string, dataType: number, dims: readonly number[], values: TensorValues): OnnxTensor {
  const count = elementCount(dims);
  if (values.length !== count) throw new Error(`tensor "${name}": ${values.length} values for shape [${dims.join(", ")}]`);
  const size = dataTypeSize(dataType);
  if (size === undefined || values.BYTES_PER_ELEMENT !== size)
    throw new Error(`tensor "${name}": ${values.constructor.name} cannot hold ${dataTypeName(dataType)}`);
  return {
    name,
    dims: [...dims],
    dataType,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    floatData: [],
    int32Data: [],
    stringData: [],
    int64Data: [],
    doubleData: [],
    uint64Data: [],
    externalData: [],
    metadataProps: [],
  };
}

function arrayFor(type: number, name: string | undefined): (buf: ArrayBufferLike, n: number) => TensorValues {
  switch (type) {
    case DataType.FLOAT:
      return (b, n) => new Float32Array(b, 0, n);
    case DataType.DOUBLE:
      return (b, n) => new Float64Array(b, 0, n);
    case DataType.INT8:
      return (b, n) => new Int8Array(b, 0, n);
    case DataType.UINT8:
    case DataType.BOOL:
      return (b, n) => new Uint8Array(b, 0, n);
    case DataType.INT16:
      return (b, n) => new Int16Array(b, 0, n);
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return (b, n) => new Uint16Array(b, 0, n);
    case DataType.INT32:
      return (b, n) => new Int32Array(b, 0, n);
    case DataType.UINT32:
      return (b, n) => new Uint32Array(b, 0, n);
    case DataType.INT64:
      return (b, n) => new BigInt64Array(b, 0, n);
    case DataType.UINT64:
      return (b, n) => new BigUint64Array(b, 0, n);
    default:
      throw new Error(`tensor "${name ?? ""}": values of ${dataTypeName(type)} cannot be read as numbers`);
  }
}

function pickTyped(t: OnnxTensor, type: number): ArrayLike<number | bigint> {
  switch (type) {
    case DataType.FLOAT:
      return t.floatData;
    case DataType.DOUBLE:
      return t.doubleData;
    case DataType.INT64:
      return t.int64Data;
    case DataType.UINT32:
    case DataType.UINT64:
      return t.uint64Data;
    default:
      // int8, uint8, int16, uint16, int32, bool and the 16-bit floats' bit patterns.
      return t.int32Data;
  }
}
