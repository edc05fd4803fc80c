import type { z } from "zod";
import type { FfmpegCaps } from "./ffmpegBinary.js";

/**
 * One camera as ffmpeg reads it: the arguments before `-i` and what the camera needs to know
 * about the kind (its capabilities). Made by the kind's {@link CameraSourceKind.create}.
 */
export interface CameraSource {
  /** The kind's name, as in the config's `source`. */
  readonly kind: string;
  /** ffmpeg arguments up to and including `-i INPUT`. */
  inputArgs(caps: FfmpegCaps): string[];
  /**
   * The same input as an ffconcat file can say it: the url and its demuxer and protocol options
   * (names without the dash). Sources that have it keep a url's credentials off ffmpeg's
   * command line; undefined where the input needs more than the concat demuxer can pass on.
   */
  concatInput?(caps: FfmpegCaps): { url: string; options: [string, string][] } | undefined;
  /** Network sources: host:port to probe while waiting to reconnect, so a camera that comes back is noticed at once. */
  readonly endpoint?: { host: string; port: number };
  /** Finite: when ffmpeg ends normally, that is the end (a file that does not loop), not an outage. */
  readonly finite: boolean;
  /**
   * Backpressure: the source is read only as fast as frames are taken (a file read as fast as
   * detection goes), so waiting for the next frame is not a stall.
   */
  readonly readsAsConsumed: boolean;
}

/** What a source needs from the rest of its camera's config. */
export interface SourceContext {
  /** Frames per second taken from the stream. */
  fps: number;
  stall_timeout_ms: number;
  /** Folder that relative paths are resolved against (the config file's). */
  baseDir: string;
}

/**
 * One kind of camera source, in its own file: its config keys (a `source` literal, `url` and its
 * own options, checked by zod), whether a bare url is one of its own (a camera without `source:`
 * takes the kind that claims its url), and the factory. The config union and `createSource` are
 * built from the list of kinds in `sources.ts`; nothing else knows the kinds.
 */
export interface CameraSourceKind<Name extends string = string, Shape extends z.ZodRawShape = z.ZodRawShape> {
  readonly kind: Name;
  /** The kind's keys, merged into the camera's common keys (`source: z.literal(kind)` among them). */
  readonly shape: Shape & { source: z.ZodLiteral<Name> };
  /** The url schemes it reads ("rtsp", "rtsps"); none for a device path. */
  readonly schemes: readonly string[];
  /** The url forms it reads, for messages ("rtsp://, rtsps://"). */
  readonly forms: string;
  /** A url without `source:` is this kind's. */
  claims(url: string): boolean;
  create(cfg: z.output<z.ZodObject<Shape>>, ctx: SourceContext): CameraSource;
}

export function defineSourceKind<Name extends string, Shape extends z.ZodRawShape>(k: CameraSourceKind<Name, Shape>): CameraSourceKind<Name, Shape> {
  return k;
}

/** host:port of a network url, with the scheme's default port. */
export function endpointOf(url: string, defaults: Record<string, number>): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port ? Number(u.port) : (defaults[u.protocol] ?? 0) };
}
