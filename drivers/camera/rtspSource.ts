import type { FfmpegCaps } from "./ffmpegBinary.js";
import type { CameraSource, SourceConfig } from "./source.js";

/** rtsp:// and rtsps:// cameras: TCP interleaved by default (survives NAT and lossy links), UDP optional. */
export class RtspSource implements CameraSource {
  readonly kind = "rtsp";
  readonly finite = false;
  readonly endpoint: { host: string; port: number };
  readonly #cfg: SourceConfig;

  constructor(cfg: SourceConfig) {
    this.#cfg = cfg;
    const u = new URL(cfg.url);
    this.endpoint = { host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port ? Number(u.port) : u.protocol === "rtsps:" ? 322 : 554 };
  }

  inputArgs(caps: FfmpegCaps): string[] {
    // The socket timeout (µs) makes a silent server end ffmpeg on its own; the stall watchdog
    // is the backstop for every other way a stream can hang.
    const timeoutUs = String(Math.max(1, Math.floor(this.#cfg.stall_timeout_ms / 2)) * 1000);
    return ["-rtsp_transport", this.#cfg.transport, caps.rtspTimeoutOption, timeoutUs, "-fflags", "+discardcorrupt", "-i", this.#cfg.url];
  }
}
