import type { CameraSource, SourceConfig } from "./source.js";

/** A USB camera at /dev/videoN, optionally asked for a capture format and size. */
export class V4l2Source implements CameraSource {
  readonly kind = "v4l2";
  readonly finite = false;
  readonly #cfg: SourceConfig;

  constructor(cfg: SourceConfig) {
    this.#cfg = cfg;
  }

  inputArgs(): string[] {
    return [
      "-f",
      "v4l2",
      ...(this.#cfg.v4l2_format ? ["-input_format", this.#cfg.v4l2_format] : []),
      ...(this.#cfg.v4l2_size ? ["-video_size", this.#cfg.v4l2_size] : []),
      "-i",
      this.#cfg.url,
    ];
  }
}
