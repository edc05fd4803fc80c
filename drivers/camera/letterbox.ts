import type { Frame } from "./frame.js";

export type LetterboxMode = "top-left" | "center";

export interface FrameSpec {
  width: number;
  height: number;
  pixelFormat: Frame["format"];
  /** Grey level of the padding (0..255). */
  padValue: number;
  letterbox: LetterboxMode;
}

/**
 * Where a src_width × src_height picture lands in the frame. The same arithmetic as the ffmpeg
 * filter from `letterboxFilter` (round half up of src × min(W/src_w, H/src_h); pad offsets
 * floored), so the recorded geometry matches the pixels exactly.
 */
export function letterboxGeometry(
  srcWidth: number,
  srcHeight: number,
  spec: Pick<FrameSpec, "width" | "height" | "letterbox">,
): Frame["letterbox"] & { scaled_width: number; scaled_height: number } {
  const scale = Math.min(spec.width / srcWidth, spec.height / srcHeight);
  const sw = Math.min(spec.width, Math.max(1, Math.round(srcWidth * scale)));
  const sh = Math.min(spec.height, Math.max(1, Math.round(srcHeight * scale)));
  const center = spec.letterbox === "center";
  return {
    src_width: srcWidth,
    src_height: srcHeight,
    scale,
    pad_x: center ? Math.floor((spec.width - sw) / 2) : 0,
    pad_y: center ? Math.floor((spec.height - sh) / 2) : 0,
    scaled_width: sw,
    scaled_height: sh,
  };
}

/**
 * The ffmpeg filter chain: keep at most `fps` frames per second of stream time (the first frame
 * in each 1/fps slot, so nothing is duplicated when the camera is slower; a clock that jumps back
 * by over a second, as when a camera reboots, starts the slots again), report each kept
 * frame's timestamp and source size (showinfo, parsed from stderr), then scale keeping the aspect
 * ratio and pad to the frame size. Expressions use the input size, so a resolution change
 * mid-stream is letterboxed correctly too.
 */
export function letterboxFilter(spec: FrameSpec, fps: number): string {
  const { width: W, height: H } = spec;
  const r = `min(${W}/iw,${H}/ih)`;
  const hex = spec.padValue.toString(16).padStart(2, "0");
  const x = spec.letterbox === "center" ? "floor((ow-iw)/2)" : "0";
  const y = spec.letterbox === "center" ? "floor((oh-ih)/2)" : "0";
  return [
    `select='isnan(t)+isnan(prev_selected_t)+gt(floor(t*${fps}),floor(prev_selected_t*${fps}))+lt(t,prev_selected_t-1)'`,
    // checksum=0: the checksums and statistics of the full-size picture cost more than the scaling.
    "showinfo=checksum=0",
    `scale=w='min(${W},max(1,round(iw*${r})))':h='min(${H},max(1,round(ih*${r})))':flags=bilinear`,
    `format=${spec.pixelFormat}`,
    `pad=${W}:${H}:'${x}':'${y}':color=0x${hex}${hex}${hex}`,
  ].join(",");
}

/**
 * The filter graph when ffmpeg also writes stills: the rate-limited frames are split after
 * showinfo, one branch letterboxed to the frame size ([frames]), the other keeping every
 * `stillEvery`-th frame at the camera's own resolution ([stills]). Both branches see the same
 * frames, so still k is a picture of frame k × stillEvery of the graph.
 */
export function stillsFilterGraph(spec: FrameSpec, fps: number, stillEvery: number): string {
  const chain = letterboxFilter(spec, fps).split(",");
  const at = chain.findIndex((f) => f.startsWith("showinfo"));
  const head = chain.slice(0, at + 1).join(",");
  const tail = chain.slice(at + 1).join(",");
  return `[0:v:0]${head},split=2[lb][st];[lb]${tail}[frames];[st]select='not(mod(n,${stillEvery}))'[stills]`;
}
