import type { CameraSource, SourceConfig } from "./source.js";

/**
 * http(s):// cameras: a stream ffmpeg can probe (MJPEG multipart, MPEG-TS, …), or a snapshot URL
 * that the image2 demuxer fetches again for every frame, at the camera's fps.
 */
export class HttpSource implements CameraSource {
  readonly kind = "http";
  readonly finite = false;
  readonly endpoint: { host: string; port: number };
  readonly #cfg: SourceConfig & { fps: number };

  constructor(cfg: SourceConfig & { fps: number }) {
    this.#cfg = cfg;
    const u = new URL(cfg.url);
    this.endpoint = { host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80 };
  }

  inputArgs(): string[] {
    if (this.#cfg.http_mode === "snapshot") {
      // -re paces the fetches at the frame rate (image2 would otherwise loop as fast as it can);
      // image2 takes no I/O timeout, so a hung fetch is the stall watchdog's to end.
      return ["-re", "-f", "image2", "-loop", "1", "-pattern_type", "none", "-framerate", String(this.#cfg.fps), "-i", this.#cfg.url];
    }
    const timeoutUs = String(Math.max(1, Math.floor(this.#cfg.stall_timeout_ms / 2)) * 1000);
    return ["-rw_timeout", timeoutUs, "-reconnect", "0", "-fflags", "+discardcorrupt", "-i", this.#cfg.url];
  }
}
