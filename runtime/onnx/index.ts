/**
 * Reading and writing ONNX models without onnx's generated code: a small protobuf wire codec
 * (`wire.ts`) and the ModelProto subset the runtime needs (`decode.ts`, `encode.ts`), with
 * every field it does not model kept and written back unchanged.
 *
 * ```ts
 * const model = readOnnxFile("model.onnx");
 * opsetVersion(model);                        // 11
 * metadataRecord(model).names;                // Ultralytics keeps its labels here
 * model.graph.output.map((o) => [o.name, valueShape(o)]); // [["output", [1, 3549, 85]]]
 * operatorTypes(model).has("Conv");
 * writeOnnxFile("copy.onnx", model);          // byte for byte the same file, when nothing changed
 * ```
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { decodeModel } from "./decode.js";
import { encodeModel } from "./encode.js";
import type { OnnxModel } from "./types.js";
import { ProtoError } from "./wire.js";

export { decodeModel, decodeGraph, decodeTensor } from "./decode.js";
export { encodeModel } from "./encode.js";
export {
  attr,
  attrFloat,
  attrInt,
  attrInts,
  attrString,
  getAttribute,
  graphInputs,
  makeNode,
  metadataRecord,
  operatorTypes,
  opsetVersion,
  valueElemType,
  valueShape,
} from "./graph.js";
export {
  allTensors,
  dataTypeName,
  dataTypeSize,
  elementCount,
  externalDataFiles,
  externalDataRef,
  makeTensor,
  resolveExternalPath,
  tensorFloat32,
  tensorRawBytes,
  tensorValues,
  type ExternalDataRef,
  type TensorValues,
} from "./tensor.js";
export * from "./types.js";
export { ProtoError, ProtoReader, ProtoWriter, type UnknownField } from "./wire.js";

/** Reads and decodes an ONNX file; a file that is not one fails naming the file and the byte. */
export function readOnnxFile(file: string): OnnxModel {
  const bytes = readFileSync(file);
  try {
    return decodeModel(bytes);
  } catch (err) {
    if (err instanceof ProtoError) throw new ProtoError(`${file}: not a readable ONNX model: ${err.message}`);
    throw err;
  }
}

/** Encodes and writes a model; written to a temporary file first, so a reader never sees half a model. */
export function writeOnnxFile(file: string, model: OnnxModel): Uint8Array {
  const bytes = encodeModel(model);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
  return bytes;
}
