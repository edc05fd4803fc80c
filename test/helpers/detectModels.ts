import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { createRootLogger, type Logger } from "../../runtime/log/logger.js";
import { REPO_ROOT } from "./sharedData.js";

const MAKER = path.join(REPO_ROOT, "test/fixtures/detect/makeConstModel.py");

export interface ConstModelSpec {
  batch: 1 | "N";
  width: number;
  height: number;
  shape: [1, number, number];
  values: number[];
  mask?: number[];
  /** Whole last axis only for an all-`pad` frame, cut to `narrow` otherwise (see makeConstModel.py). */
  grey_only?: { pad: number; narrow: number };
  input?: string;
  output?: string;
}

/** Writes a tiny ONNX model whose output is `values` (+ mask × frame mean), via /usr/bin/python3 + onnx. */
export function makeConstModel(dir: string, name: string, spec: ConstModelSpec): string {
  const specFile = path.join(dir, `${name}.json`);
  const file = path.join(dir, `${name}.onnx`);
  writeFileSync(specFile, JSON.stringify({ input: "images", output: "output", ...spec }));
  execFileSync("/usr/bin/python3", [MAKER, specFile, file], { stdio: "pipe" });
  return file;
}

export const sha256Of = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** Writes a detection manifest next to the model with the model's real SHA-256 (override with `patch`). */
export function writeManifest(
  dir: string,
  name: string,
  model: string,
  /** A decoder name (its one output is "output"), or the whole `output` object. */
  decoder: string | Record<string, unknown>,
  input: { width: number; height: number },
  labels: string[],
  patch: Record<string, unknown> = {},
): string {
  const file = path.join(dir, `${name}.manifest.json`);
  const manifest = {
    id: name,
    version: "test",
    task: "detection",
    variants: { fp32: { file: path.basename(model), sha256: sha256Of(model) } },
    input: {
      name: "images",
      layout: "NCHW",
      width: input.width,
      height: input.height,
      color: "rgb",
      scale: 1,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      letterbox_pad: 114,
    },
    output: typeof decoder === "string" ? { name: "output", decoder } : decoder,
    labels,
    thresholds: { score: 0.3, nms_iou: 0.45 },
    ...patch,
  };
  writeFileSync(file, JSON.stringify(manifest, null, 2));
  return file;
}

/** A real pino logger whose JSON lines are kept for assertions. */
export function captureLogger(): { log: Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const log = createRootLogger({ level: "debug", pretty: false, destination: dest });
  return {
    log,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
