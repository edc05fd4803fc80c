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
import { ProtoError, ProtoReader, WIRE_BYTES, WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT, type UnknownField } from "./wire.js";

/**
 * Reads an ONNX ModelProto. `bytes` stays referenced: tensors' `rawData` are views of it.
 * Throws a ProtoError naming the byte where the file stops making sense.
 */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  const r = new ProtoReader(bytes);
  let graph: OnnxGraph | undefined;
  const m: Omit<OnnxModel, "graph"> = { opsetImport: [], metadataProps: [] };
  while (!r.done()) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        r.expect(wire, WIRE_VARINT);
        m.irVersion = r.int64Number();
        break;
      case 2:
        m.producerName = str(r, wire);
        break;
      case 3:
        m.producerVersion = str(r, wire);
        break;
      case 4:
        m.domain = str(r, wire);
        break;
      case 5:
        r.expect(wire, WIRE_VARINT);
        m.modelVersion = r.int64Number();
        break;
      case 6:
        m.docString = str(r, wire);
        break;
      case 7:
        graph = decodeGraph(msg(r, wire));
        break;
      case 8:
        m.opsetImport.push(decodeOpset(msg(r, wire)));
        break;
      case 14:
        m.metadataProps.push(decodeEntry(msg(r, wire)));
        break;
      default:
        keep(m, r.unknown(field, wire));
    }
  }
  if (!graph) throw new ProtoError("not an ONNX model: it has no graph");
  return { ...m, graph };
}

/** Reads one GraphProto (a model's graph, or a subgraph from a Loop/If/Scan attribute). */
export function decodeGraph(r: ProtoReader): OnnxGraph {
  const g: OnnxGraph = { node: [], initializer: [], sparseInitializer: [], input: [], output: [], valueInfo: [], metadataProps: [] };
  while (!r.done()) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        g.node.push(decodeNode(msg(r, wire)));
        break;
      case 2:
        g.name = str(r, wire);
        break;
      case 5:
        g.initializer.push(decodeTensor(msg(r, wire)));
        break;
      case 10:
        g.docString = str(r, wire);
        break;
      case 11:
        g.input.push(decodeValueInfo(msg(r, wire)));
        break;
      case 12:
        g.output.push(decodeValueInfo(msg(r, wire)));
        break;
      case 13:
        g.valueInfo.push(decodeValueInfo(msg(r, wire)));
        break;
      case 15:
        g.sparseInitializer.push(decodeSparse(msg(r, wire)));
        break;
      case 16:
        g.metadataProps.push(decodeEntry(msg(r, wire)));
        break;
      default:
        keep(g, r.unknown(field, wire));
    }
  }
  return g;
}

function decodeNode(r: ProtoReader): OnnxNode {
  const n: OnnxNode = { input: [], output: [], attribute: [], metadataProps: [] };
  while (!r.done()) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        n.input.push(str(r, wire));
        break;
      case 2:
        n.output.push(str(r, wire));
        break;
      case 3:
        n.name = str(r, wire);
        break;
      case 4:
        n.opType = str(r, wire);
        break;
      case 5:
        n.attribute.push(decodeAttribute(msg(r, wire)));
        break;
      case 6:
        n.docString = str(r, wire);
        break;
      case 7:
        n.domain = str(r, wire);
        break;
      case 8:
        n.overload = str(r, wire);
        break;
      case 9:
        n.metadataProps.push(decodeEntry(msg(r, wire)));
        break;
      default:
        keep(n, r.unknown(field, wire));
    }
  }
  return n;
}

function decodeAttribute(r: ProtoReader): OnnxAttribute {
  const a: OnnxAttribute = { floats: [], ints: [], strings: [], tensors: [], graphs: [], typeProtos: [], sparseTensors: [] };
  while (!r.done()) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        a.name = str(r, wire);
        break;
      case 2:
        r.expect(wire, WIRE_FIXED32);
        a.f = r.float();
        break;
      case 3:
        r.expect(wire, WIRE_VARINT);
        a.i = r.int64();
        break;
      case 4:
        r.expect(wire, WIRE_BYTES);
        a.s = r.bytes();
        break;
      case 5:
        a.t = decodeTensor(msg(r, wire));
        break;
      case 6:
        a.g = decodeGraph(msg(r, wire));
        break;
      case 7:
        r.repeated(wire, WIRE_FIXED32, () => a.floats.push(r.float()));
        break;
      case 8:
        r.repeated(wire, WIRE_VARINT, () => a.ints.push(r.int64()));
        break;
      case 9:
        r.expect(wire, WIRE_BYTES);
        a.strings.push(r.bytes());
        break;
      case 10:
        a.tensors.push(decodeTensor(msg(r, wire)));
        break;
      case 11:
        a.graphs.push(decodeGraph(msg(r, wire)));
        break;
      case 13:
        a.docString = str(r, wire);
        break;
      case 14:
        a.tp = decodeType(msg(r, wire));
        break;
      case 15:
        a.typeProtos.push(decodeType(msg(r, wire)));
        break;
      case 20:
        r.expect(wire, WIRE_VARINT);
        a.type = r.int32();
        break;
      case 21:
        a.refAttrName = str(r, wire);
        break;
      case 22:
        a.sparseTensor = decodeSparse(msg(r, wire));
        break;
      case 23:
        a.sparseTensors.push(decodeSparse(msg(r, wire)));
        break;
      default:
        keep(a, r.unknown(field, wire));
    }
  }
  return a;
}

/** Reads one TensorProto. */
export function decodeTensor(r: ProtoReader): OnnxTensor {
  const t: OnnxTensor = {
    dims: [],
    floatData: [],
    int32Data: [],
    stringData: [],
    int64Data: [],
    doubleData: [],
    uint64Data: [],
    externalData: [],
    metadataProps: [],
  };
  while (!r.done()) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        r.repeated(wire, WIRE_VARINT, () => t.dims.push(r.int64Number()));
        break;
      case 2:
        r.expect(wire, WIRE_VARINT);
        t.dataType = r.int32();
        break;
      case 4:
        r.repeated(wire, WIRE_FIXED32, () => t.floatData.push(r.float()));
        break;
      case 5:
        r.repeated(wire, WIRE_VARINT, () => t.int32Data.push(r.int32()));
        break;
      case 6:
        r.expect(wire, WIRE_BYTES);
        t.stringData.push(r.bytes());
        break;
      case 7:
        r.repeated(wire, WIRE_VARINT, () => t.int64Data.push(r.int64()));
        break;
      case 8:
        t.name = str(r, wire);
        break;
      case 9:
        r.expect(wire, WIRE_BYTES);
        t.rawData = r.bytes();
        break;
      case 10:
        r.repeated(wire, WIRE_FIXED64, () => t.doubleData.push(r.double()));
        break;
      case 11:
        r.repeated(wire, WIRE_VARINT, () => t.uint64Data.push(r.uint64()));
        break;
      case 12:
        t.docString = str(r, wire);
        break;
      case 13:
        t.externalData.push(decodeEntry(msg(r, wire)));
        break;
      case 14:
        r.expect(wire, WIRE_VARINT);
        t.dataLocation = r.int32();
        break;
      case 16:
        t.metadataProps.push(decodeEntry(msg(r, wire)));
        break;
      default:
        keep(t, r.unknown(field, wire));
    }
  }
  return t;
}

function decodeSparse(r: ProtoReader): OnnxSparseTensor {
  const s: OnnxSparseTensor = { dims: [] };
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1) s.values = decodeTensor(msg(r, wire));
    else if (field === 2) s.indices = decodeTensor(msg(r, wire));
    else if (field === 3) r.repeated(wire, WIRE_VARINT, () => s.dims.push(r.int64Number()));
    else keep(s, r.unknown(field, wire));
  }
  return s;
}

function decodeValueInfo(r: ProtoReader): ValueInfo {
  const v: ValueInfo = { metadataProps: [] };
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1) v.name = str(r, wire);
    else if (field === 2) v.type = decodeType(msg(r, wire));
    else if (field === 3) v.docString = str(r, wire);
    else if (field === 4) v.metadataProps.push(decodeEntry(msg(r, wire)));
    else keep(v, r.unknown(field, wire));
  }
  return v;
}

function decodeType(r: ProtoReader): TypeProto {
  const t: TypeProto = {};
  while (!r.done()) {
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        t.tensorType = decodeTensorType(msg(r, wire));
        break;
      case 4:
        t.sequenceType = decodeElemOnly(msg(r, wire));
        break;
      case 5: {
        const m = msg(r, wire);
        const map: NonNullable<TypeProto["mapType"]> = {};
        while (!m.done()) {
          const tag = m.tag();
          if (tag.field === 1 && tag.wire === WIRE_VARINT) map.keyType = m.int32();
          else if (tag.field === 2) map.valueType = decodeType(msg(m, tag.wire));
          else keep(map, m.unknown(tag.field, tag.wire));
        }
        t.mapType = map;
        break;
      }
      case 6:
        t.denotation = str(r, wire);
        break;
      case 8:
        t.sparseTensorType = decodeTensorType(msg(r, wire));
        break;
      case 9:
        t.optionalType = decodeElemOnly(msg(r, wire));
        break;
      default:
        keep(t, r.unknown(field, wire));
    }
  }
  return t;
}

function decodeElemOnly(r: ProtoReader): { elemType?: TypeProto; unknown?: UnknownField[] } {
  const out: { elemType?: TypeProto; unknown?: UnknownField[] } = {};
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1) out.elemType = decodeType(msg(r, wire));
    else keep(out, r.unknown(field, wire));
  }
  return out;
}

function decodeTensorType(r: ProtoReader): TensorTypeProto {
  const t: TensorTypeProto = {};
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WIRE_VARINT) t.elemType = r.int32();
    else if (field === 2) t.shape = decodeShape(msg(r, wire));
    else keep(t, r.unknown(field, wire));
  }
  return t;
}

function decodeShape(r: ProtoReader): TensorShape {
  const s: TensorShape = { dim: [] };
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1) s.dim.push(decodeDim(msg(r, wire)));
    else keep(s, r.unknown(field, wire));
  }
  return s;
}

function decodeDim(r: ProtoReader): Dimension {
  const d: Dimension = {};
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WIRE_VARINT) d.dimValue = r.int64Number();
    else if (field === 2) d.dimParam = str(r, wire);
    else if (field === 3) d.denotation = str(r, wire);
    else keep(d, r.unknown(field, wire));
  }
  return d;
}

function decodeOpset(r: ProtoReader): OperatorSetId {
  const o: OperatorSetId = {};
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1) o.domain = str(r, wire);
    else if (field === 2 && wire === WIRE_VARINT) o.version = r.int64Number();
    else keep(o, r.unknown(field, wire));
  }
  return o;
}

function decodeEntry(r: ProtoReader): StringEntry {
  const e: StringEntry = {};
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1) e.key = str(r, wire);
    else if (field === 2) e.value = str(r, wire);
    else keep(e, r.unknown(field, wire));
  }
  return e;
}

function str(r: ProtoReader, wire: number): string {
  r.expect(wire, WIRE_BYTES);
  return r.string();
}

function msg(r: ProtoReader, wire: number): ProtoReader {
  r.expect(wire, WIRE_BYTES);
  return r.message();
}

function keep(target: { unknown?: UnknownField[] }, f: UnknownField): void {
  (target.unknown ??= []).push(f);
}
