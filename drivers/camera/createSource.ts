import path from "node:path";
import type { CameraConfig } from "../../runtime/config/sections/cameras.js";
import { FileSource } from "./fileSource.js";
import { HttpSource } from "./httpSource.js";
import { RtspSource } from "./rtspSource.js";
import type { CameraSource } from "./source.js";
import { V4l2Source } from "./v4l2Source.js";

/** The path of a file:// url; relative paths (file://media/x.mp4) are from `baseDir`. */
export function filePath(url: string, baseDir: string): string {
  const rest = decodeURIComponent(url.slice("file://".length));
  return path.resolve(baseDir, rest);
}

/** Picks the source kind from the url's scheme (the config schema has already checked it). */
export function createSource(cfg: CameraConfig, baseDir: string): CameraSource {
  const url = cfg.url;
  if (/^\/dev\/video\d+$/.test(url)) return new V4l2Source(cfg);
  const scheme = url.slice(0, url.indexOf(":")).toLowerCase();
  switch (scheme) {
    case "rtsp":
    case "rtsps":
      return new RtspSource(cfg);
    case "http":
    case "https":
      return new HttpSource(cfg);
    case "file":
      return new FileSource(cfg, filePath(url, baseDir));
    default:
      throw new Error(`camera "${cfg.id}": unknown url scheme "${scheme}" (known: rtsp, rtsps, http, https, file, /dev/videoN)`);
  }
}
