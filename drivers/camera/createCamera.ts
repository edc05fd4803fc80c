import path from "node:path";
import type { PartContext } from "../../runtime/part.js";
import type { CameraConfig } from "../../runtime/config/sections/cameras.js";
import type { Logger } from "../../runtime/log/logger.js";
import type { Metrics } from "../../runtime/metrics.js";
import { Camera } from "./camera.js";
import { createSource } from "./createSource.js";
import type { FrameSpec } from "./letterbox.js";
import { LiveView } from "./liveView.js";
import type { CameraSource } from "./source.js";

export interface CreateCameraOptions extends Partial<FrameSpec> {
  /** The camera's logger (the factory adds nothing to it). */
  log: Logger;
  /** Folder that relative file:// paths are resolved against (the config file's). */
  baseDir: string;
  /** The config's ffmpeg_path. */
  ffmpegPath?: string;
  metrics?: Metrics;
  stop?: { quitMs?: number; termMs?: number };
  /** Where a run's input file goes when the url has credentials (see hiddenInput.ts). */
  runDir?: string;
}

/**
 * A camera part for one config entry. The frame size, pixel format, padding and letterbox
 * placement come from `opts` (the detector's model) when given, else from the camera's own
 * input_size / pixel_format / pad_value / letterbox settings. The source kind follows the url.
 */
export function createCamera(cfg: CameraConfig, opts: CreateCameraOptions): Camera {
  return new Camera(cfg, {
    width: opts.width ?? cfg.input_size[0],
    height: opts.height ?? cfg.input_size[1],
    pixelFormat: opts.pixelFormat ?? cfg.pixel_format,
    padValue: opts.padValue ?? cfg.pad_value,
    letterbox: opts.letterbox ?? cfg.letterbox,
    log: opts.log,
    source: createSource(cfg, opts.baseDir),
    ffmpegPath: opts.ffmpegPath,
    metrics: opts.metrics,
    stop: opts.stop,
    stillEvery: cfg.still_interval_s > 0 ? Math.max(1, Math.round(cfg.still_interval_s * cfg.fps)) : 0,
    ...(opts.runDir ? { runDir: opts.runDir } : {}),
  });
}

/**
 * The cameras of a config (enabled ones), keyed by id, for runtime/parts.ts. `frameSpec` lets
 * the detection wiring ask for its model's input size and pixel format per camera.
 */
export function buildCameras(ctx: PartContext, frameSpec?: (cam: CameraConfig) => Partial<FrameSpec> | undefined): Map<string, Camera> {
  const cameras = new Map<string, Camera>();
  for (const cfg of ctx.config.cameras) {
    if (!cfg.enabled) continue;
    const log = ctx.log.child({ module: "camera", camera: cfg.id });
    cameras.set(
      cfg.id,
      createCamera(cfg, {
        ...frameSpec?.(cfg),
        log,
        baseDir: ctx.loaded.baseDir,
        ffmpegPath: ctx.config.ffmpeg_path,
        metrics: ctx.metrics,
        runDir: runDirOf(ctx),
      }),
    );
  }
  return cameras;
}

/** Where cameras keep a run's input file (it holds the url's credentials): `<data_dir>/run`. */
function runDirOf(ctx: PartContext): string | undefined {
  return typeof ctx.dataDir === "string" ? path.join(ctx.dataDir, "run") : undefined;
}

/** The live view part when the config enables it (it serves every enabled camera). */
export function buildLiveView(ctx: PartContext): LiveView | undefined {
  if (!ctx.config.live_view.enabled) return undefined;
  const sources = new Map<string, CameraSource>();
  const backoff = new Map<string, CameraConfig["backoff"]>();
  for (const cfg of ctx.config.cameras) {
    if (!cfg.enabled) continue;
    sources.set(cfg.id, createSource(cfg, ctx.loaded.baseDir));
    backoff.set(cfg.id, cfg.backoff);
  }
  const runDir = runDirOf(ctx);
  return new LiveView(ctx.config.live_view, {
    log: ctx.log.child({ module: "live-view" }),
    sources,
    backoff,
    ffmpegPath: ctx.config.ffmpeg_path,
    ...(runDir ? { runDir } : {}),
  });
}
