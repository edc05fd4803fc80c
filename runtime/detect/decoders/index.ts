/**
 * Output decoders, one file per layout, behind one interface ({@link DetectionDecoder}): a
 * manifest's `output.decoder` names one, its `output` object names the tensors it reads, and
 * the pipeline hands it every output of a run by role.
 */
import type { Detection } from "../types.js";
import type {
  BaseOutput,
  DecodeOptions,
  DeclaredOutput,
  DetectionDecoder,
  GraphFacts,
  Recognised,
  RoleOutputs,
  RoleTensors,
  Tensor,
} from "./common.js";
import { end2end } from "./end2end.js";
import { nanodet } from "./nanodet.js";
import { nanodetPlus } from "./nanodetPlus.js";
import { rtdetr } from "./rtdetr.js";
import { ssd } from "./ssd.js";
import { yolov5 } from "./yolov5.js";
import { yolov8 } from "./yolov8.js";
import { yolox } from "./yolox.js";

export type {
  BaseOutput,
  DecodeOptions,
  DeclaredOutput,
  DetectionDecoder,
  GraphFacts,
  Geometry,
  Recognised,
  RoleOutputs,
  RoleTensors,
  Tensor,
} from "./common.js";
export { anchorGrid, gridCount } from "./common.js";

/** Every decoder, by the name a manifest's `output.decoder` gives. */
export const DECODERS = {
  yolov8,
  yolov5,
  yolox,
  end2end,
  rtdetr,
  nanodet,
  "nanodet-plus": nanodetPlus,
  ssd,
} as const;

export type DecoderName = keyof typeof DECODERS;
export const DECODER_NAMES = Object.keys(DECODERS) as DecoderName[];

export function decoderOf(name: string): DetectionDecoder | undefined {
  return (DECODERS as Record<string, DetectionDecoder | undefined>)[name];
}

/**
 * The tensor names of each role of an `output` object, or the problems that stop it being
 * read: a single-output decoder takes `name`; the others take `tensors` by role.
 */
export function outputRoles(output: BaseOutput): { roles: Record<string, string[]>; problems: string[] } {
  const decoder = decoderOf(output.decoder);
  const problems: string[] = [];
  const roles: Record<string, string[]> = {};
  if (!decoder) return { roles, problems: [`unknown decoder "${output.decoder}" (known: ${DECODER_NAMES.join(", ")})`] };
  const single = decoder.roles.length === 1 && !decoder.roles[0]!.perStride;
  if (single && output.name !== undefined) {
    if (output.tensors !== undefined) problems.push("give either name or tensors, not both");
    roles[decoder.roles[0]!.name] = [output.name];
    return { roles, problems };
  }
  if (output.name !== undefined) {
    problems.push(`name: decoder ${decoder.name} reads several outputs; name them in tensors: {${decoder.roles.map((r) => r.name).join(", ")}}`);
  }
  const tensors = output.tensors ?? {};
  for (const key of Object.keys(tensors)) {
    if (!decoder.roles.some((r) => r.name === key)) {
      problems.push(`tensors.${key}: decoder ${decoder.name} has no output role "${key}" (roles: ${decoder.roles.map((r) => r.name).join(", ")})`);
    }
  }
  for (const role of decoder.roles) {
    const v = tensors[role.name];
    if (v === undefined) {
      if (!role.optional) problems.push(single ? "name: the output tensor's name is missing" : `tensors.${role.name}: missing`);
      continue;
    }
    if (role.perStride) roles[role.name] = Array.isArray(v) ? v : [v];
    else if (Array.isArray(v)) problems.push(`tensors.${role.name}: one tensor name, not a list`);
    else roles[role.name] = [v];
  }
  return { roles, problems };
}

/** Every output name an `output` object reads. */
export function outputNames(output: BaseOutput): string[] {
  return Object.values(outputRoles(output).roles).flat();
}

/** An onnxruntime output as a decoder reads it: int64 values (BigInt64Array) become numbers. */
export function asTensor(t: { data: unknown; dims: readonly number[] }): Tensor {
  const data = t.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return { data: Float64Array.from(data, Number), dims: t.dims };
  if (ArrayBuffer.isView(data) && !(data instanceof DataView)) return { data: data as unknown as ArrayLike<number>, dims: t.dims };
  throw new Error(`output of type ${typeof data} is not numeric`);
}

/** A run's outputs by role, for `output`; throws naming what is missing. */
export function roleTensors(
  output: BaseOutput,
  result: Readonly<Record<string, { data: unknown; dims: readonly number[] } | undefined>>,
): RoleTensors {
  const { roles, problems } = outputRoles(output);
  if (problems.length > 0) throw new Error(problems.join("; "));
  const out: Record<string, Tensor[]> = {};
  for (const [role, names] of Object.entries(roles)) {
    out[role] = names.map((n) => {
      const t = result[n];
      if (!t) throw new Error(`no output "${n}" (outputs: ${Object.keys(result).join(", ")})`);
      return asTensor(t);
    });
  }
  return out;
}

/** Declared graph outputs by role, for the shape checks; names the graph lacks are problems. */
export function roleDeclared(output: BaseOutput, declared: readonly DeclaredOutput[]): { outputs: RoleOutputs; problems: string[] } {
  const { roles, problems } = outputRoles(output);
  const outputs: Record<string, DeclaredOutput[]> = {};
  for (const [role, names] of Object.entries(roles)) {
    outputs[role] = [];
    for (const n of names) {
      const d = declared.find((o) => o.name === n);
      if (d) outputs[role].push(d);
      else problems.push(`the model has no output "${n}" (outputs: ${declared.map((o) => `${o.name} [${o.shape.join(", ")}]`).join(", ")})`);
    }
  }
  return { outputs, problems };
}

/** Decodes batch item `b` of a run with the decoder `output` names. Boxes are in model-input pixels. */
export function decode(output: BaseOutput, tensors: RoleTensors, b: number, d: DecodeOptions): Detection[] {
  const decoder = decoderOf(output.decoder);
  if (!decoder) throw new Error(`unknown decoder "${output.decoder}" (known: ${DECODER_NAMES.join(", ")})`);
  return decoder.decode(tensors, b, d, output);
}

/** Every layout that fits a graph's outputs (more than one means the shapes cannot tell them apart). */
export function recognise(facts: GraphFacts): (Recognised & { decoder: DecoderName })[] {
  const found: (Recognised & { decoder: DecoderName })[] = [];
  for (const name of DECODER_NAMES) {
    const r = (DECODERS[name] as DetectionDecoder).recognise(facts);
    if (r) found.push({ ...r, decoder: name });
  }
  return found;
}
