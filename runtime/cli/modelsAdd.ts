import path from "node:path";
import { DECODER_NAMES, type DecoderName } from "../detect/decoders/index.js";
import { createRootLogger } from "../log/logger.js";
import { EXIT_FATAL, flag, usageError, type CliCommand } from "./command.js";

/** sysexits.h EX_DATAERR: the model file cannot be used as a detector. */
export const EXIT_MODEL = 65;

const VALUED = ["--id", "--labels", "--out", "--size", "--decoder", "--letterbox", "--color"];

export function positional(args: readonly string[], valued: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (valued.includes(a)) i++;
    else if (!a.startsWith("--")) return a;
  }
  return undefined;
}

function rel(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r.startsWith("..") ? p : r;
}

export const modelsAddCommand: CliCommand = {
  name: "models add",
  synopsis: "models add FILE.onnx",
  summary: "recognise an ONNX detector's layout and write its manifest",
  help: `Usage: cityedge models add FILE.onnx [--id ID] [--labels coco|FILE] [--out DIR] [options]

Reads the ONNX file itself (its inputs, outputs, operators and metadata_props, where Ultralytics
keeps names, imgsz, stride and task), recognises the output layout, and writes DIR/manifest.json
with the model (and any external-data files) copied beside it, each with its sha256; labels,
input geometry, pre-processing and default thresholds come with it. Then it runs the model once
on a real still (models/stills/street.jpg) on each execution provider and prints what it found
and the time per run. A layout it does not know is refused with the outputs it saw and the
layouts it knows.

  --id ID                  model id (default: the file's name)
  --labels coco|FILE       labels: COCO's 80, or a file with one per line (or a JSON array);
                           default: the model's own names, else COCO for an 80-class model
  --out DIR                where to write (default: models/ID)
  --size WxH               the input size, for a model whose input is dynamic
  --decoder NAME           take this layout (${DECODER_NAMES.join(", ")})
  --letterbox top-left|center, --color rgb|bgr   pre-processing, where the family default is wrong
  --force                  replace an existing manifest
  --no-run                 skip the trial run (installing for another machine)
  --json                   print one JSON object

Exit codes: 0 added, 64 bad command line, 65 the model cannot be used (the reason is printed).`,

  async run(args) {
    const file = positional(args, VALUED);
    if (file === undefined) return usageError(modelsAddCommand, "missing FILE.onnx");
    const sizeArg = flag(args, "--size");
    let size: { width: number; height: number } | undefined;
    if (sizeArg !== undefined) {
      const m = /^(\d+)x(\d+)$/.exec(sizeArg);
      if (!m) return usageError(modelsAddCommand, `--size must be WIDTHxHEIGHT, got "${sizeArg}"`);
      size = { width: Number(m[1]), height: Number(m[2]) };
    }
    const decoder = flag(args, "--decoder");
    if (decoder !== undefined && !(DECODER_NAMES as string[]).includes(decoder)) {
      return usageError(modelsAddCommand, `--decoder: unknown decoder "${decoder}" (known: ${DECODER_NAMES.join(", ")})`);
    }
    const letterbox = flag(args, "--letterbox");
    if (letterbox !== undefined && letterbox !== "top-left" && letterbox !== "center")
      return usageError(modelsAddCommand, `--letterbox must be top-left or center`);
    const color = flag(args, "--color");
    if (color !== undefined && color !== "rgb" && color !== "bgr") return usageError(modelsAddCommand, `--color must be rgb or bgr`);
    const json = args.includes("--json");
    const { addModel, AddModelError, STILL } = await import("../detect/addModel.js");
    let added;
    try {
      added = await addModel(file, {
        ...(flag(args, "--id") !== undefined ? { id: flag(args, "--id")! } : {}),
        ...(flag(args, "--labels") !== undefined ? { labels: flag(args, "--labels")! } : {}),
        ...(flag(args, "--out") !== undefined ? { out: flag(args, "--out")! } : {}),
        ...(size ? { size } : {}),
        ...(decoder ? { decoder: decoder as DecoderName } : {}),
        ...(letterbox ? { letterbox: letterbox } : {}),
        ...(color ? { color: color } : {}),
        force: args.includes("--force"),
      });
    } catch (err) {
      if (err instanceof AddModelError) {
        process.stderr.write(`cityedge models add: ${file}: ${err.message}\n`);
        return EXIT_MODEL;
      }
      throw err;
    }
    const m = added.manifest;
    let trial;
    if (!args.includes("--no-run")) {
      const { tryModel } = await import("../detect/tryModel.js");
      const quiet = createRootLogger({ level: "silent", pretty: false, destination: process.stderr });
      trial = await tryModel(added.manifestFile, STILL, quiet);
    }
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ v: 1, manifest: added.manifestFile, id: m.id, decoder: added.decoder, layout: added.reason, labels_from: added.labelsFrom, labels: m.labels.length, input: m.input, output: m.output, files: added.files, ...(trial ? { trial } : {}) })}\n`,
      );
    } else {
      const w = (s: string) => process.stdout.write(`${s}\n`);
      w(`added ${m.id}: ${rel(added.manifestFile)}`);
      w(`  layout  ${added.decoder}: ${added.reason}`);
      w(
        `  input   ${m.input.name} ${m.input.width}x${m.input.height}, ${m.input.color}, scale ${m.input.scale === 1 ? "1" : m.input.scale.toPrecision(6)}, letterbox ${m.input.letterbox}`,
      );
      w(`  labels  ${m.labels.length} from ${added.labelsFrom}: ${m.labels.slice(0, 8).join(", ")}${m.labels.length > 8 ? ", …" : ""}`);
      for (const f of added.files) w(`  file    ${rel(f)}`);
      if (trial) {
        const counts = new Map<string, number>();
        for (const o of trial.objects) counts.set(o.label, (counts.get(o.label) ?? 0) + 1);
        w(
          `  found   on ${rel(trial.still)}: ${trial.objects.length === 0 ? "nothing" : [...counts].map(([l, n]) => `${n} ${l}`).join(", ")} (score >= ${m.thresholds.score})`,
        );
        for (const p of trial.providers) w(`  ${p.provider.padEnd(10)}${p.ms !== undefined ? `${p.ms} ms per run` : `unavailable: ${p.error}`}`);
        if (trial.providers.every((p) => p.ms === undefined)) {
          process.stderr.write(`cityedge models add: ${file}: the manifest is written, but the model ran on no provider\n`);
          return EXIT_FATAL;
        }
      }
      w(`next: cityedge detect --model ${rel(added.manifestFile)} VIDEO --line x1,y1,x2,y2`);
    }
    return 0;
  },
};
