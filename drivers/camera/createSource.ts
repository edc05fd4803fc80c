import type { CameraConfig } from "../../runtime/config/sections/cameras.js";
import type { CameraSource, CameraSourceKind, SourceContext } from "./source.js";
import { SOURCE_KINDS } from "./sources.js";

export { filePath } from "./fileSource.js";

/** The source of a camera's config, made by its kind (the config schema has checked it). */
export function createSource(cfg: CameraConfig, baseDir: string): CameraSource {
  const kind = SOURCE_KINDS.find((k) => k.kind === cfg.source) as CameraSourceKind | undefined;
  if (!kind) throw new Error(`camera "${cfg.id}": unknown source kind "${cfg.source}" (known: ${SOURCE_KINDS.map((k) => k.kind).join(", ")})`);
  const ctx: SourceContext = { fps: cfg.fps, stall_timeout_ms: cfg.stall_timeout_ms, baseDir };
  return kind.create(cfg, ctx);
}
