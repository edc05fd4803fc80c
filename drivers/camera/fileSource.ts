import type { CameraSource, SourceConfig } from "./source.js";

/** A video file, looped and paced in real time for the demo, or read once as fast as ffmpeg can (benchmarks). */
export class FileSource implements CameraSource {
  readonly kind = "file";
  readonly finite: boolean;
  readonly #cfg: SourceConfig;
  readonly #file: string;

  /** `file` is the absolute path (the caller resolves file://relative against the config's folder). */
  constructor(cfg: SourceConfig, file: string) {
    this.#cfg = cfg;
    this.#file = file;
    this.finite = !cfg.loop;
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
