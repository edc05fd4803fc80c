import type {
  Dimension,
  OnnxAttribute,
  OnnxGraph,
  OnnxModel,
  OnnxNode,
  OnnxSparseTensor,
  OnnxTensor,
  OperatorSetId,
  StringEntry,
  TensorShape,
  TensorTypeProto,
  TypeProto,
  ValueInfo,
} from "./types.js";
import { ProtoWriter, UnknownCursor, type UnknownField } from "./wire.js";

/**
 * Writes an ONNX ModelProto. Fields go out in field-number order, repeated scalars packed where
 * onnx.proto declares them packed, unknown fields at their place: a model read from a file that
 * protobuf's own serializer wrote comes back byte for byte.
 */
export function encodeModel(model: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  const u = new UnknownCursor(w, model.unknown);
  u.before(1);
  if (model.irVersion !== undefined) w.varintField(1, model.irVersion);
  u.before(2);
  optString(w, 2, model.producerName);
  u.before(3);
  optString(w, 3, model.producerVersion);
  u.before(4);
  optString(w, 4, model.domain);
  u.before(5);
  if (model.modelVersion !== undefined) w.varintField(5, model.modelVersion);
  u.before(6);
  optString(w, 6, model.docString);
  u.before(7);
  w.messageField(7, (g) => encodeGraph(g, model.graph));
  u.before(8);
  for (const o of model.opsetImport) w.messageField(8, (m) => encodeOpset(m, o));
  u.before(14);
  for (const e of model.metadataProps) w.messageField(14, (m) => encodeEntry(m, e));
  u.rest();
  return w.finish();
}

export function encodeGraph(w: ProtoWriter, g: OnnxGraph): void {
  const u = new UnknownCursor(w, g.unknown);
  u.before(1);
  for (const n of g.node) w.messageField(1, (m) => encodeNode(m, n));
  u.before(2);
  optString(w, 2, g.name);
  u.before(5);
  for (const t of g.initializer) w.messageField(5, (m) => encodeTensor(m, t));
  u.before(10);
  optString(w, 10, g.docString);
  u.before(11);
  for (const v of g.input) w.messageField(11, (m) => encodeValueInfo(m, v));
  u.before(12);
  for (const v of g.output) w.messageField(12, (m) => encodeValueInfo(m, v));
  u.before(13);
  for (const v of g.valueInfo) w.messageField(13, (m) => encodeValueInfo(m, v));
  u.before(15);
  for (const s of g.sparseInitializer) w.messageField(15, (m) => encodeSparse(m, s));
  u.before(16);
  for (const e of g.metadataProps) w.messageField(16, (m) => encodeEntry(m, e));
  u.rest();
}

function encodeNode(w: ProtoWriter, n: OnnxNode): void {
  const u = new UnknownCursor(w, n.unknown);
  u.before(1);
  for (const s of n.input) w.stringField(1, s);
  u.before(2);
  for (const s of n.output) w.stringField(2, s);
  u.before(3);
  optString(w, 3, n.name);
  u.before(4);
  optString(w, 4, n.opType);
  u.before(5);
  for (const a of n.attribute) w.messageField(5, (m) => encodeAttribute(m, a));
  u.before(6);
  optString(w, 6, n.docString);
  u.before(7);
  optString(w, 7, n.domain);
  u.before(8);
  optString(w, 8, n.overload);
  u.before(9);
  for (const e of n.metadataProps) w.messageField(9, (m) => encodeEntry(m, e));
  u.rest();
}

function encodeAttribute(w: ProtoWriter, a: OnnxAttribute): void {
  const u = new UnknownCursor(w, a.unknown);
  u.before(1);
  optString(w, 1, a.name);
  u.before(2);
  if (a.f !== undefined) w.floatField(2, a.f);
  u.before(3);
  if (a.i !== undefined) w.varintField(3, a.i);
  u.before(4);
  if (a.s !== undefined) w.bytesField(4, a.s);
  u.before(5);
  if (a.t) {
    const t = a.t;
    w.messageField(5, (m) => encodeTensor(m, t));
  }
  u.before(6);
  if (a.g) {
    const g = a.g;
    w.messageField(6, (m) => encodeGraph(m, g));
  }
  u.before(7);
  for (const f of a.floats) w.floatField(7, f);
  u.before(8);
  for (const i of a.ints) w.varintField(8, i);
  u.before(9);
  for (const s of a.strings) w.bytesField(9, s);
  u.before(10);
  for (const t of a.tensors) w.messageField(10, (m) => encodeTensor(m, t));
  u.before(11);
  for (const g of a.graphs) w.messageField(11, (m) => encodeGraph(m, g));
  u.before(13);
  optString(w, 13, a.docString);
  u.before(14);
  if (a.tp) {
    const tp = a.tp;
    w.messageField(14, (m) => encodeType(m, tp));
  }
  u.before(15);
  for (const t of a.typeProtos) w.messageField(15, (m) => encodeType(m, t));
  u.before(20);
  if (a.type !== undefined) w.varintField(20, a.type);
  u.before(21);
  optString(w, 21, a.refAttrName);
  u.before(22);
  if (a.sparseTensor) {
    const s = a.sparseTensor;
    w.messageField(22, (m) => encodeSparse(m, s));
  }
  u.before(23);
  for (const s of a.sparseTensors) w.messageField(23, (m) => encodeSparse(m, s));
  u.rest();
}

export function encodeTensor(w: ProtoWriter, t: OnnxTensor): void {
  const u = new UnknownCursor(w, t.unknown);
  u.before(1);
  for (const d of t.dims) w.varintField(1, d);
  u.before(2);
  if (t.dataType !== undefined) w.varintField(2, t.dataType);
  u.before(4);
  w.packedField(4, t.floatData.length, (m) => {
    for (const f of t.floatData) m.rawFloat(f);
  });
  u.before(5);
  w.packedField(5, t.int32Data.length, (m) => {
    for (const v of t.int32Data) m.rawVarint64(v);
  });
  u.before(6);
  for (const s of t.stringData) w.bytesField(6, s);
  u.before(7);
  w.packedField(7, t.int64Data.length, (m) => {
    for (const v of t.int64Data) m.rawVarint64(v);
  });
  u.before(8);
  optString(w, 8, t.name);
  u.before(9);
  if (t.rawData !== undefined) w.bytesField(9, t.rawData);
  u.before(10);
  w.packedField(10, t.doubleData.length, (m) => {
    for (const v of t.doubleData) m.rawDouble(v);
  });
  u.before(11);
  w.packedField(11, t.uint64Data.length, (m) => {
    for (const v of t.uint64Data) m.rawVarint64(v);
  });
  u.before(12);
  optString(w, 12, t.docString);
  u.before(13);
  for (const e of t.externalData) w.messageField(13, (m) => encodeEntry(m, e));
  u.before(14);
  if (t.dataLocation !== undefined) w.varintField(14, t.dataLocation);
  u.before(16);
  for (const e of t.metadataProps) w.messageField(16, (m) => encodeEntry(m, e));
  u.rest();
}

function encodeSparse(w: ProtoWriter, s: OnnxSparseTensor): void {
  const u = new UnknownCursor(w, s.unknown);
  u.before(1);
  if (s.values) {
    const v = s.values;
    w.messageField(1, (m) => encodeTensor(m, v));
  }
  u.before(2);
  if (s.indices) {
    const i = s.indices;
    w.messageField(2, (m) => encodeTensor(m, i));
  }
  u.before(3);
  for (const d of s.dims) w.varintField(3, d);
  u.rest();
}

function encodeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  const u = new UnknownCursor(w, v.unknown);
  u.before(1);
  optString(w, 1, v.name);
  u.before(2);
  if (v.type) {
    const t = v.type;
    w.messageField(2, (m) => encodeType(m, t));
  }
  u.before(3);
  optString(w, 3, v.docString);
  u.before(4);
  for (const e of v.metadataProps) w.messageField(4, (m) => encodeEntry(m, e));
  u.rest();
}

function encodeType(w: ProtoWriter, t: TypeProto): void {
  const u = new UnknownCursor(w, t.unknown);
  u.before(1);
  if (t.tensorType) {
    const tt = t.tensorType;
    w.messageField(1, (m) => encodeTensorType(m, tt));
  }
  u.before(4);
  if (t.sequenceType) {
    const s = t.sequenceType;
    w.messageField(4, (m) => encodeElemOnly(m, s));
  }
  u.before(5);
  if (t.mapType) {
    const map = t.mapType;
    w.messageField(5, (m) => {
      const mu = new UnknownCursor(m, map.unknown);
      mu.before(1);
      if (map.keyType !== undefined) m.varintField(1, map.keyType);
      mu.before(2);
      if (map.valueType) {
        const vt = map.valueType;
        m.messageField(2, (mm) => encodeType(mm, vt));
      }
      mu.rest();
    });
  }
  u.before(6);
  optString(w, 6, t.denotation);
  u.before(8);
  if (t.sparseTensorType) {
    const st = t.sparseTensorType;
    w.messageField(8, (m) => encodeTensorType(m, st));
  }
  u.before(9);
  if (t.optionalType) {
    const o = t.optionalType;
    w.messageField(9, (m) => encodeElemOnly(m, o));
  }
  u.rest();
}

function encodeElemOnly(w: ProtoWriter, e: { elemType?: TypeProto; unknown?: UnknownField[] }): void {
  const u = new UnknownCursor(w, e.unknown);
  u.before(1);
  if (e.elemType) {
    const t = e.elemType;
    w.messageField(1, (m) => encodeType(m, t));
  }
  u.rest();
}

function encodeTensorType(w: ProtoWriter, t: TensorTypeProto): void {
  const u = new UnknownCursor(w, t.unknown);
  u.before(1);
  if (t.elemType !== undefined) w.varintField(1, t.elemType);
  u.before(2);
  if (t.shape) {
    const s = t.shape;
    w.messageField(2, (m) => encodeShape(m, s));
  }
  u.rest();
}

function encodeShape(w: ProtoWriter, s: TensorShape): void {
  const u = new UnknownCursor(w, s.unknown);
  u.before(1);
  for (const d of s.dim) w.messageField(1, (m) => encodeDim(m, d));
  u.rest();
}

function encodeDim(w: ProtoWriter, d: Dimension): void {
  const u = new UnknownCursor(w, d.unknown);
  u.before(1);
  if (d.dimValue !== undefined) w.varintField(1, d.dimValue);
  u.before(2);
  optString(w, 2, d.dimParam);
  u.before(3);
  optString(w, 3, d.denotation);
  u.rest();
}

function encodeOpset(w: ProtoWriter, o: OperatorSetId): void {
  const u = new UnknownCursor(w, o.unknown);
  u.before(1);
  optString(w, 1, o.domain);
  u.before(2);
  if (o.version !== undefined) w.varintField(2, o.version);
  u.rest();
}

function encodeEntry(w: ProtoWriter, e: StringEntry): void {
  const u = new UnknownCursor(w, e.unknown);
  u.before(1);
  optString(w, 1, e.key);
  u.before(2);
  optString(w, 2, e.value);
  u.rest();
}

function optString(w: ProtoWriter, field: number, s: string | undefined): void {
  if (s !== undefined) w.stringField(field, s);
}
