/**
 * A one-node ONNX model (y = Relu(x), x float [1, 8], opset 13), encoded here so that a provider
 * can be tried for real in seconds: TensorRT builds an engine for it, CUDA runs a kernel, without
 * touching any shipped model or engine cache.
 */

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** A length-delimited field (wire type 2). */
function bytes(field: number, payload: readonly number[]): number[] {
  return [...varint((field << 3) | 2), ...varint(payload.length), ...payload];
}

function text(field: number, s: string): number[] {
  return bytes(field, [...Buffer.from(s, "utf8")]);
}

/** A varint field (wire type 0). */
function int(field: number, v: number): number[] {
  return [...varint(field << 3), ...varint(v)];
}

const FLOAT = 1;

function floatTensor(name: string, dims: readonly number[]): number[] {
  // ValueInfoProto { name = 1, type = 2 { tensor_type = 1 { elem_type = 1, shape = 2 { dim = 1 { dim_value = 1 } } } } }
  const shape = dims.flatMap((d) => bytes(1, int(1, d)));
  return [...text(1, name), ...bytes(2, bytes(1, [...int(1, FLOAT), ...bytes(2, shape)]))];
}

export const PROBE_INPUT = "x";
export const PROBE_OUTPUT = "y";
export const PROBE_SHAPE = [1, 8] as const;

export function probeModel(): Uint8Array {
  const node = [...text(1, PROBE_INPUT), ...text(2, PROBE_OUTPUT), ...text(3, "relu"), ...text(4, "Relu")];
  const graph = [
    ...bytes(1, node),
    ...text(2, "probe"),
    ...bytes(11, floatTensor(PROBE_INPUT, PROBE_SHAPE)),
    ...bytes(12, floatTensor(PROBE_OUTPUT, PROBE_SHAPE)),
  ];
  // ModelProto { ir_version = 1, producer_name = 2, graph = 7, opset_import = 8 { domain = 1, version = 2 } }
  const model = [...int(1, 7), ...text(2, "cityedge doctor"), ...bytes(7, graph), ...bytes(8, [...text(1, ""), ...int(2, 13)])];
  return Uint8Array.from(model);
}
