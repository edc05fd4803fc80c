import path from "node:path";
import { z } from "zod";
import { defineSourceKind, type CameraSource } from "./source.js";
import { schemeOf } from "./sourceUrl.js";

const SHAPE = {
  source: z.literal("file").describe("A video file; may be left out when url is file://"),
  url: z
    .string()
    .regex(/^file:\/\/\S+$/, "must be file://PATH (relative paths are from the config file) without spaces")
    .describe("file://PATH; relative paths are from the config file"),
  loop: z.boolean().default(true).describe("Start again at the end"),
  realtime: z.boolean().default(true).describe("Play at the clip's own speed instead of as fast as possible"),
  read_as_consumed: z
    .boolean()
    .default(false)
    .describe(
      "With realtime false: read a frame only when detection has taken the last one, instead of decoding frames only to drop them (batch runs over recordings, benchmarks)",
    ),
};

type FileConfig = z.output<z.ZodObject<typeof SHAPE>>;

/** The path of a file:// url; relative paths (file://media/x.mp4) are from `baseDir`. */
export function filePath(url: string, baseDir: string): string {
  const rest = decodeURIComponent(url.slice("file://".length));
  return path.resolve(baseDir, rest);
}

/** A video file, looped and paced in real time for the demo, or read once as fast as ffmpeg can (benchmarks). */
export class FileSource implements CameraSource {
  readonly kind = "file";
  readonly finite: boolean;
  readonly readsAsConsumed: boolean;
  readonly #cfg: FileConfig;
  readonly #file: string;

  /** `file` is the absolute path (file://relative is resolved against the config's folder). */
  constructor(cfg: FileConfig, file: string) {
    this.#cfg = cfg;
    this.#file = file;
    this.finite = !cfg.loop;
    this.readsAsConsumed = !cfg.realtime && cfg.read_as_consumed;
  }

  inputArgs(): string[] {
    return [
      ...(this.#cfg.realtime ? ["-re"] : []),
      ...(this.#cfg.loop ? ["-stream_loop", "-1"] : []),
      "-fflags",
      "+discardcorrupt+genpts",
      "-i",
      `file:${this.#file}`,
    ];
  }
}

export const FILE_SOURCE = defineSourceKind({
  kind: "file",
  shape: SHAPE,
  schemes: ["file"],
  forms: "file://",
  claims: (url) => schemeOf(url) === "file",
  create: (cfg, ctx) => new FileSource(cfg, filePath(cfg.url, ctx.baseDir)),
});
