import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  attr,
  AttributeType,
  DataLocation,
  DataType,
  decodeModel,
  encodeModel,
  externalDataFiles,
  externalDataRef,
  getAttribute,
  makeNode,
  makeTensor,
  metadataRecord,
  operatorTypes,
  opsetVersion,
  ProtoError,
  readOnnxFile,
  resolveExternalPath,
  tensorFloat32,
  tensorValues,
  valueShape,
  writeOnnxFile,
  type OnnxModel,
  type OnnxTensor,
  type TensorValues,
} from "../runtime/onnx/index.js";
import { REPO_ROOT, sharedFile } from "./helpers/sharedData.js";

const SHIPPED = [
  "models/vehicles/vehicles.fp32.onnx",
  "models/vehicles/vehicles.int8.onnx",
  "models/demand_lstm/demand.fp32.onnx",
  "models/demand_lstm/demand.fp16.onnx",
].map((f) => path.join(REPO_ROOT, f));
const YOLOX = sharedFile("models/yolox_nano.onnx");
const INT64_MAX = 2n ** 63n - 1n;

let dir: string;
let codecFile: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-onnx-"));
  codecFile = path.join(dir, "codec.onnx");
  execFileSync("/usr/bin/python3", [path.join(REPO_ROOT, "test/fixtures/onnx/makeCodecModel.py"), codecFile], { stdio: "pipe" });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a model once on a fixed pseudo-random input and returns every output's values. */
async function runOnce(model: string | Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, number[]>> {
  const session =
    typeof model === "string"
      ? await ort.InferenceSession.create(model, { intraOpNumThreads: 1 })
      : await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v.data as Float32Array)]));
  } finally {
    await session.release();
  }
}

const list = (v: TensorValues): (number | bigint)[] => Array.from(v as ArrayLike<number | bigint>);

function noise(n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = ((s >>> 8) / 2 ** 24) * scale;
  }
  return a;
}

describe("ONNX codec: files written by protobuf's serializer come back byte for byte", () => {
  it.each(SHIPPED)("%s", (file) => {
    const bytes = readFileSync(file);
    expect(Buffer.from(encodeModel(decodeModel(bytes))).equals(bytes)).toBe(true);
  });

  it.skipIf(!YOLOX)("the shared YOLOX-Nano", () => {
    const bytes = readFileSync(YOLOX!);
    expect(Buffer.from(encodeModel(decodeModel(bytes))).equals(bytes)).toBe(true);
  });

  it("a model using every field and attribute type, and fields the codec does not model", () => {
    const bytes = readFileSync(codecFile);
    const model = decodeModel(bytes);
    expect(Buffer.from(encodeModel(model)).equals(bytes)).toBe(true);
    // training_info (20) and functions (25) are not modelled: kept as unknown fields.
    expect(model.unknown?.map((u) => u.field)).toEqual([20, 25]);
    // quantization_annotation (14) sits between known fields 13 and 15 and goes back there.
    expect(model.graph.unknown?.map((u) => u.field)).toEqual([14]);
    expect(model.graph.initializer.find((t) => t.name === "w_raw")?.unknown?.map((u) => u.field)).toEqual([3]);
    // Changed and written again, the unknown fields are still there, unchanged.
    model.metadataProps.push({ key: "added", value: "yes" });
    model.graph.node.push(makeNode("Identity", ["y"], ["y2"], "added"));
    const again = decodeModel(encodeModel(model));
    expect(again.unknown).toEqual(decodeModel(bytes).unknown);
    expect(again.graph.unknown).toEqual(decodeModel(bytes).graph.unknown);
    expect(metadataRecord(again).added).toBe("yes");
    expect(again.graph.node.map((n) => n.name)).toEqual(["every_attr", "added"]);
  });
});

describe("ONNX codec: what a reader sees", () => {
  it.skipIf(!YOLOX)("YOLOX-Nano: IR version, opset, inputs, outputs, shapes, operators", () => {
    const m = readOnnxFile(YOLOX!);
    expect(m.irVersion).toBe(7);
    expect(opsetVersion(m)).toBe(11);
    expect(m.graph.input.map((v) => [v.name, v.type?.tensorType?.elemType, valueShape(v)])).toEqual([["images", DataType.FLOAT, [1, 3, 416, 416]]]);
    expect(m.graph.output.map((v) => [v.name, valueShape(v)])).toEqual([["output", [1, 3549, 85]]]);
    expect(operatorTypes(m)).toEqual(new Set(["Slice", "Concat", "Conv", "Sigmoid", "Mul", "Add", "MaxPool", "Resize", "Reshape", "Transpose"]));
    const conv = m.graph.node.find((n) => n.opType === "Conv")!;
    const w = m.graph.initializer.find((t) => t.name === conv.input[1])!;
    expect(tensorFloat32(w).length).toBe(w.dims.reduce((a, b) => a * b, 1));
  });

  it("every attribute type, typed tensor fields, int64 extremes, symbolic and unknown dimensions", () => {
    const m = readOnnxFile(codecFile);
    expect(m).toMatchObject({
      irVersion: 8,
      producerName: "codec-test",
      producerVersion: "1",
      domain: "test",
      modelVersion: 3,
      docString: "model doc",
    });
    expect(opsetVersion(m)).toBe(13);
    expect(opsetVersion(m, "test.codec")).toBe(1);
    expect(metadataRecord(m)).toEqual({ names: "{0: 'car', 1: 'bus'}", imgsz: "[416, 416]" });

    const node = m.graph.node[0]!;
    expect(node).toMatchObject({
      opType: "Everything",
      domain: "test.codec",
      name: "every_attr",
      docString: "all attribute types",
      input: ["x"],
      output: ["y"],
    });
    const a = (name: string) => getAttribute(node, name)!;
    expect(a("f")).toMatchObject({ type: AttributeType.FLOAT, f: 0.25 });
    expect(a("i")).toMatchObject({ type: AttributeType.INT, i: -1n });
    expect(Buffer.from(a("s").s!).toString()).toBe("hello");
    expect(Array.from(tensorFloat32(a("t").t!))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(a("g").g!.node[0]!.opType).toBe("Identity");
    expect(a("floats").floats).toEqual([1, -0.5, 3.25]);
    expect(a("ints").ints).toEqual([INT64_MAX, -1n, 0n, 7n]);
    expect(a("strings").strings.map((s) => Buffer.from(s).toString())).toEqual(["a", "bc"]);
    expect(list(tensorValues(a("tensors").tensors[0]!))).toEqual([1, 2]);
    expect(a("graphs").graphs.map((g) => g.name)).toEqual(["sub", "sub"]);
    expect(a("sparse").sparseTensor!.dims).toEqual([2, 3]);
    expect(list(tensorValues(a("sparse").sparseTensor!.indices!))).toEqual([1n, 5n]);
    expect(a("sparses").sparseTensors).toHaveLength(2);
    expect(a("tp").tp!.sequenceType!.elemType!.tensorType!.shape!.dim.map((d) => d.dimValue ?? d.dimParam)).toEqual([2, "n"]);
    expect(a("tps").typeProtos[1]!.tensorType).toEqual({ elemType: DataType.INT8 });
    expect(a("ref")).toMatchObject({ refAttrName: "outer", type: AttributeType.INT });

    const init = (name: string) => m.graph.initializer.find((t) => t.name === name)!;
    expect(list(tensorValues(init("w_float")))).toEqual([0.5, -1, 2, Math.fround(1e-30)]);
    expect(list(tensorValues(init("w_int64")))).toEqual([INT64_MAX, -INT64_MAX - 1n, -1n]);
    expect(list(tensorValues(init("w_int32")))).toEqual([-5, 0, 2 ** 31 - 1]);
    expect(list(tensorValues(init("w_int8")))).toEqual([-128, 127]);
    expect(list(tensorValues(init("w_double")))).toEqual([1 / 3, -2.5]);
    expect(list(tensorValues(init("w_uint64")))).toEqual([2n ** 64n - 1n]);
    expect(init("w_string").stringData.map((s) => Buffer.from(s).toString())).toEqual(["x", "yz"]);
    expect(init("w_raw")).toMatchObject({ docString: "raw_data", dims: [2, 2] });
    expect(externalDataRef(init("w_external"))).toEqual({ location: "weights.bin", offset: 64, length: 16 });
    expect(externalDataFiles(m)).toEqual(["weights.bin"]);
    expect(m.graph.sparseInitializer[0]!.dims).toEqual([2, 3]);

    expect(valueShape(m.graph.input[0]!)).toEqual(["batch", 3, 416, 416]);
    expect(m.graph.input[0]!.type!.tensorType!.shape!.dim[0]!.denotation).toBe("DATA_BATCH");
    expect(valueShape(m.graph.output[0]!)).toEqual([1, null, 85]);
    const vi = (name: string) => m.graph.valueInfo.find((v) => v.name === name)!;
    expect(valueShape(vi("u"))).toBeUndefined();
    expect(vi("map").type!.mapType).toMatchObject({
      keyType: DataType.STRING,
      valueType: { tensorType: { elemType: DataType.INT64, shape: { dim: [] } } },
    });
    expect(vi("opt").type!.optionalType!.elemType!.tensorType!.elemType).toBe(DataType.FLOAT);
    expect(vi("sp_value").type).toMatchObject({ denotation: "SPARSE", sparseTensorType: { elemType: DataType.FLOAT } });
  });

  it("a model built here is read back the same, and Python's onnx checker accepts it", () => {
    const model: OnnxModel = {
      irVersion: 7,
      opsetImport: [{ domain: "", version: 13 }],
      metadataProps: [{ key: "k", value: "v" }],
      graph: {
        name: "built",
        node: [
          makeNode("Slice", ["x", "starts", "ends", "axes"], ["y"], "slice"),
          makeNode("Concat", ["y", "y"], ["z"], "concat", [attr.int("axis", 0)]),
        ],
        initializer: [
          makeTensor("starts", DataType.INT64, [1], BigInt64Array.of(1n)),
          makeTensor("ends", DataType.INT64, [1], BigInt64Array.of(INT64_MAX)),
          makeTensor("axes", DataType.INT64, [1], BigInt64Array.of(-1n)),
        ],
        sparseInitializer: [],
        input: [{ name: "x", type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 4 }] } } }, metadataProps: [] }],
        output: [{ name: "z", type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: "n" }] } } }, metadataProps: [] }],
        valueInfo: [],
        metadataProps: [],
      },
    };
    const file = path.join(dir, "built.onnx");
    const bytes = writeOnnxFile(file, model);
    expect(decodeModel(bytes)).toEqual(decodeModel(encodeModel(decodeModel(bytes))));
    const checked = execFileSync("/usr/bin/python3", [
      "-c",
      "import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m); print(m.graph.node[1].attribute[0].i, m.graph.initializer[1].raw_data.hex())",
      file,
    ]).toString();
    expect(checked.trim()).toBe("0 ffffffffffffff7f");
  });
});

describe("ONNX codec: onnxruntime runs what it writes, with identical outputs", () => {
  /** Moves every float initializer into `floatData` (the typed field) and the big ones into an external file. */
  function rewrite(model: OnnxModel, weightsFile: string): { model: OnnxModel; external: Uint8Array } {
    const chunks: Uint8Array[] = [];
    let offset = 0;
    const initializer = model.graph.initializer.map((t): OnnxTensor => {
      if (t.dataType !== DataType.FLOAT) return t;
      const values = tensorFloat32(t);
      if (values.length < 64) return { ...t, rawData: undefined, floatData: Array.from(values) };
      const bytes = new Uint8Array(values.buffer);
      chunks.push(bytes);
      const entry = {
        ...t,
        rawData: undefined,
        dataLocation: DataLocation.EXTERNAL,
        externalData: [
          { key: "location", value: weightsFile },
          { key: "offset", value: String(offset) },
          { key: "length", value: String(bytes.length) },
        ],
      };
      offset += bytes.length;
      return entry;
    });
    return { model: { ...model, graph: { ...model.graph, initializer } }, external: Buffer.concat(chunks) };
  }

  const cases: [string, string | undefined, Record<string, ort.Tensor>][] = [
    ["vehicles fp32", SHIPPED[0], { images: new ort.Tensor("float32", noise(3 * 256 * 416, 1), [1, 3, 256, 416]) }],
    ["vehicles int8 (QDQ)", SHIPPED[1], { images: new ort.Tensor("float32", noise(3 * 256 * 416, 1), [1, 3, 256, 416]) }],
    ["demand LSTM", SHIPPED[2], { history: new ort.Tensor("float32", noise(384 * 6, 1), [1, 384, 6]) }],
    ["YOLOX-Nano", YOLOX, { images: new ort.Tensor("float32", noise(3 * 416 * 416, 255), [1, 3, 416, 416]) }],
  ];

  it.each(cases)("%s: re-encoded, with typed fields and external data", async (_name, file, feeds) => {
    if (!file) return expect(YOLOX).toBeUndefined();
    const original = await runOnce(file, feeds);
    const decoded = readOnnxFile(file);
    const sub = mkdtempSync(path.join(dir, "rewrite-"));
    const { model, external } = rewrite(decoded, "weights.bin");
    writeFileSync(path.join(sub, "weights.bin"), external);
    writeOnnxFile(path.join(sub, "model.onnx"), model);
    const again = readOnnxFile(path.join(sub, "model.onnx"));
    if (external.length > 0) expect(externalDataFiles(again)).toEqual(["weights.bin"]);
    for (const t of again.graph.initializer) {
      const before = decoded.graph.initializer.find((x) => x.name === t.name)!;
      expect(tensorValues(t, sub)).toEqual(tensorValues(before));
    }
    const rewritten = await runOnce(path.join(sub, "model.onnx"), feeds);
    expect(Object.keys(rewritten)).toEqual(Object.keys(original));
    for (const k of Object.keys(original)) expect(rewritten[k]).toEqual(original[k]);
    expect(Object.values(original)[0]!.some((v) => v !== 0)).toBe(true);
  });
});

describe("ONNX codec: bad input", () => {
  it("a truncated file names the file and the byte", () => {
    const bytes = readFileSync(SHIPPED[2]!);
    const file = path.join(dir, "truncated.onnx");
    writeFileSync(file, bytes.subarray(0, 1000));
    expect(() => readOnnxFile(file)).toThrow(ProtoError);
    expect(() => readOnnxFile(file)).toThrow(
      new RegExp(`^${file.replace(/[.]/g, "\\.")}: not a readable ONNX model: truncated: \\d+ bytes needed at byte \\d+`),
    );
  });

  it("a file that is not a model says so", () => {
    const file = path.join(dir, "text.onnx");
    writeFileSync(file, "");
    expect(() => readOnnxFile(file)).toThrow(`${file}: not a readable ONNX model: not an ONNX model: it has no graph`);
    writeFileSync(file, "hello, this is not protobuf\n");
    expect(() => readOnnxFile(file)).toThrow(`${file}: not a readable ONNX model:`);
  });

  it("external data outside the model's folder is refused", () => {
    expect(() => resolveExternalPath("/models/a", "../../etc/passwd")).toThrow(`external data location "../../etc/passwd" leaves the model's folder`);
    expect(() => resolveExternalPath("/models/a", "/etc/passwd")).toThrow(
      `external data location "/etc/passwd" must be a relative path inside the model's folder`,
    );
    expect(resolveExternalPath("/models/a", "w/weights.bin")).toBe("/models/a/w/weights.bin");
  });

  it("external data shorter than the reference says is an error naming the tensor", () => {
    const sub = mkdtempSync(path.join(dir, "short-"));
    writeFileSync(path.join(sub, "weights.bin"), Buffer.alloc(8));
    const t = readOnnxFile(codecFile).graph.initializer.find((x) => x.name === "w_external")!;
    expect(() => tensorValues(t, sub)).toThrow(`tensor "w_external": external data weights.bin holds 8 bytes, 64+16 wanted`);
    expect(() => tensorValues(t)).toThrow(`tensor "w_external" keeps its data in "weights.bin": the model's folder is needed to read it`);
  });
});
