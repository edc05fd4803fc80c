import type { UnknownField } from "./wire.js";

/**
 * The ONNX ModelProto, as plain objects (field names of onnx.proto in camelCase). An optional
 * field is `undefined` when the file does not carry it, so a model written back carries exactly
 * the fields it was read with; repeated fields are always arrays. Every message keeps the fields
 * this codec does not model in `unknown`, and writes them back unchanged.
 *
 * int64 values are numbers where they are sizes or versions (dimensions, opset, IR version) and
 * bigints where any int64 may occur (attribute `i`/`ints`, `int64_data`: Slice ends of
 * INT64_MAX are common).
 */
export interface OnnxModel {
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  graph: OnnxGraph;
  opsetImport: OperatorSetId[];
  metadataProps: StringEntry[];
  unknown?: UnknownField[];
}

export interface OperatorSetId {
  /** Absent or "" is the default ONNX domain ("ai.onnx"). */
  domain?: string;
  version?: number;
  unknown?: UnknownField[];
}

export interface StringEntry {
  key?: string;
  value?: string;
  unknown?: UnknownField[];
}

export interface OnnxGraph {
  node: OnnxNode[];
  name?: string;
  initializer: OnnxTensor[];
  sparseInitializer: OnnxSparseTensor[];
  docString?: string;
  input: ValueInfo[];
  output: ValueInfo[];
  valueInfo: ValueInfo[];
  metadataProps: StringEntry[];
  unknown?: UnknownField[];
}

export interface OnnxNode {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  attribute: OnnxAttribute[];
  docString?: string;
  domain?: string;
  overload?: string;
  metadataProps: StringEntry[];
  unknown?: UnknownField[];
}

/** AttributeProto.AttributeType. */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

export interface OnnxAttribute {
  name?: string;
  f?: number;
  i?: bigint;
  /** Bytes (usually UTF-8 text). */
  s?: Uint8Array;
  t?: OnnxTensor;
  g?: OnnxGraph;
  floats: number[];
  ints: bigint[];
  strings: Uint8Array[];
  tensors: OnnxTensor[];
  graphs: OnnxGraph[];
  docString?: string;
  tp?: TypeProto;
  typeProtos: TypeProto[];
  type?: number;
  refAttrName?: string;
  sparseTensor?: OnnxSparseTensor;
  sparseTensors: OnnxSparseTensor[];
  unknown?: UnknownField[];
}

/** TensorProto.DataType. */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
} as const;

export interface OnnxTensor {
  dims: number[];
  dataType?: number;
  floatData: number[];
  int32Data: number[];
  stringData: Uint8Array[];
  int64Data: bigint[];
  name?: string;
  /** A view of the file's bytes when decoded (copy it before changing it). */
  rawData?: Uint8Array;
  doubleData: number[];
  uint64Data: bigint[];
  docString?: string;
  /** With `dataLocation` EXTERNAL: `location`, `offset`, `length`, `checksum` (see tensor.ts). */
  externalData: StringEntry[];
  /** 0 DEFAULT (in the file), 1 EXTERNAL. */
  dataLocation?: number;
  metadataProps: StringEntry[];
  unknown?: UnknownField[];
}

export const DataLocation = { DEFAULT: 0, EXTERNAL: 1 } as const;

export interface OnnxSparseTensor {
  values?: OnnxTensor;
  indices?: OnnxTensor;
  dims: number[];
  unknown?: UnknownField[];
}

export interface ValueInfo {
  name?: string;
  type?: TypeProto;
  docString?: string;
  metadataProps: StringEntry[];
  unknown?: UnknownField[];
}

/** One of `tensorType`, `sequenceType`, `mapType`, `optionalType`, `sparseTensorType`. */
export interface TypeProto {
  tensorType?: TensorTypeProto;
  sequenceType?: { elemType?: TypeProto; unknown?: UnknownField[] };
  mapType?: { keyType?: number; valueType?: TypeProto; unknown?: UnknownField[] };
  optionalType?: { elemType?: TypeProto; unknown?: UnknownField[] };
  sparseTensorType?: TensorTypeProto;
  denotation?: string;
  unknown?: UnknownField[];
}

export interface TensorTypeProto {
  elemType?: number;
  /** Absent: the rank is unknown too. */
  shape?: TensorShape;
  unknown?: UnknownField[];
}

export interface TensorShape {
  dim: Dimension[];
  unknown?: UnknownField[];
}

/** A fixed size (`dimValue`), a named one (`dimParam`, e.g. "batch"), or neither (unknown). */
export interface Dimension {
  dimValue?: number;
  dimParam?: string;
  denotation?: string;
  unknown?: UnknownField[];
}
