import { z } from "zod";
import type { FfmpegCaps } from "./ffmpegBinary.js";
import { defineSourceKind, endpointOf, type CameraSource, type SourceContext } from "./source.js";
import { normalizeUserInfo } from "../../runtime/log/logger.js";
import { networkUrl, schemeOf } from "./sourceUrl.js";

const SCHEMES = ["rtsp", "rtsps"];

const SHAPE = {
  source: z.literal("rtsp").describe("An RTSP camera; may be left out when url is rtsp:// or rtsps://"),
  url: networkUrl(SCHEMES, "rtsp(s)://[user:pass@]host[:port]/path"),
  transport: z.enum(["tcp", "udp"]).default("tcp").describe("RTSP transport"),
};

type RtspConfig = z.output<z.ZodObject<typeof SHAPE>>;

/** rtsp:// and rtsps:// cameras: TCP interleaved by default (survives NAT and lossy links), UDP optional. */
export class RtspSource implements CameraSource {
  readonly kind = "rtsp";
  readonly finite = false;
  readonly readsAsConsumed = false;
  readonly endpoint: { host: string; port: number };
  readonly #cfg: RtspConfig;
  readonly #ctx: SourceContext;
  /** The url with its user-info percent-encoded: ffmpeg decodes it, and finds the host after the last `@`. */
  readonly #url: string;

  constructor(cfg: RtspConfig, ctx: SourceContext) {
    this.#cfg = cfg;
    this.#ctx = ctx;
    this.#url = normalizeUserInfo(cfg.url);
    this.endpoint = endpointOf(this.#url, { "rtsp:": 554, "rtsps:": 322 });
  }

  inputArgs(caps: FfmpegCaps): string[] {
    const spec = this.concatInput(caps);
    return spec.options.flatMap(([k, v]) => [`-${k}`, v]).concat(["-i", spec.url]);
  }

  concatInput(caps: FfmpegCaps): { url: string; options: [string, string][] } {
    // The socket timeout (µs) makes a silent server end ffmpeg on its own; the stall watchdog
    // is the backstop for every other way a stream can hang.
    const timeoutUs = String(Math.max(1, Math.floor(this.#ctx.stall_timeout_ms / 2)) * 1000);
    return {
      url: this.#url,
      options: [
        ["rtsp_transport", this.#cfg.transport],
        [caps.rtspTimeoutOption.replace(/^-/, ""), timeoutUs],
        ["fflags", "+discardcorrupt"],
      ],
    };
  }
}

export const RTSP_SOURCE = defineSourceKind({
  kind: "rtsp",
  shape: SHAPE,
  schemes: SCHEMES,
  forms: "rtsp://, rtsps://",
  claims: (url) => SCHEMES.includes(schemeOf(url) ?? ""),
  create: (cfg, ctx) => new RtspSource(cfg, ctx),
});
