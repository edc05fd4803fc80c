import { z } from "zod";
import { defineSourceKind, endpointOf, type CameraSource, type SourceContext } from "./source.js";
import { normalizeUserInfo } from "../../runtime/log/logger.js";
import { networkUrl, schemeOf } from "./sourceUrl.js";

const SCHEMES = ["http", "https"];

const SHAPE = {
  source: z.literal("http").describe("An HTTP camera; may be left out when url is http:// or https://"),
  url: networkUrl(SCHEMES, "http(s)://…: an MJPEG (or other ffmpeg-readable) stream, or a snapshot URL"),
  http_mode: z.enum(["stream", "snapshot"]).default("stream").describe("A stream (MJPEG, …) or a still image fetched again for every frame"),
};

type HttpConfig = z.output<z.ZodObject<typeof SHAPE>>;

/**
 * http(s):// cameras: a stream ffmpeg can probe (MJPEG multipart, MPEG-TS, …), or a snapshot URL
 * that the image2 demuxer fetches again for every frame, at the camera's fps.
 */
export class HttpSource implements CameraSource {
  readonly kind = "http";
  readonly finite = false;
  readonly readsAsConsumed = false;
  readonly endpoint: { host: string; port: number };
  readonly #cfg: HttpConfig;
  readonly #ctx: SourceContext;
  /** The url with its user-info percent-encoded: ffmpeg decodes it, and finds the host after the last `@`. */
  readonly #url: string;

  constructor(cfg: HttpConfig, ctx: SourceContext) {
    this.#cfg = cfg;
    this.#ctx = ctx;
    this.#url = normalizeUserInfo(cfg.url);
    this.endpoint = endpointOf(this.#url, { "http:": 80, "https:": 443 });
  }

  inputArgs(): string[] {
    if (this.#cfg.http_mode === "snapshot") {
      // -re paces the fetches at the frame rate (image2 would otherwise loop as fast as it can);
      // image2 takes no I/O timeout, so a hung fetch is the stall watchdog's to end.
      return ["-re", "-f", "image2", "-loop", "1", "-pattern_type", "none", "-framerate", String(this.#ctx.fps), "-i", this.#url];
    }
    const spec = this.concatInput()!;
    return spec.options.flatMap(([k, v]) => [`-${k}`, v]).concat(["-i", spec.url]);
  }

  /** A stream only: a snapshot url is read by image2 (forced, looping), which the concat demuxer cannot ask for. */
  concatInput(): { url: string; options: [string, string][] } | undefined {
    if (this.#cfg.http_mode === "snapshot") return undefined;
    const timeoutUs = String(Math.max(1, Math.floor(this.#ctx.stall_timeout_ms / 2)) * 1000);
    return {
      url: this.#url,
      options: [
        ["rw_timeout", timeoutUs],
        ["reconnect", "0"],
        ["fflags", "+discardcorrupt"],
      ],
    };
  }
}

export const HTTP_SOURCE = defineSourceKind({
  kind: "http",
  shape: SHAPE,
  schemes: SCHEMES,
  forms: "http(s)://",
  claims: (url) => SCHEMES.includes(schemeOf(url) ?? ""),
  create: (cfg, ctx) => new HttpSource(cfg, ctx),
});
