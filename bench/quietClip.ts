import { execFileSync } from "node:child_process";

/**
 * A static-heavy scene from a real clip: frame `frame` of each freeze repeated for `seconds`
 * (ffmpeg's loop filter), timestamps rewritten at the clip's rate. What a camera over a quiet
 * junction sees between vehicles, for motion gating's tests and the capacity benchmark.
 * `keyframeEvery` (frames) lets the result be cut without re-encoding (the benchmark's phases).
 */
export function freezeClip(
  src: string,
  out: string,
  fps: number,
  freezes: readonly { frame: number; seconds: number }[],
  ffmpeg = "ffmpeg",
  keyframeEvery?: number,
): void {
  let shift = 0;
  const filters = freezes.map((f) => {
    const n = Math.round(f.seconds * fps);
    const s = `loop=loop=${n}:size=1:start=${f.frame + shift}`;
    shift += n;
    return s;
  });
  execFileSync(
    ffmpeg,
    [
      "-hide_banner",
      "-loglevel",
      "error",
      "-y",
      "-i",
      src,
      "-vf",
      [...filters, `setpts=N/${fps}/TB`].join(","),
      "-r",
      String(fps),
      "-an",
      "-c:v",
      "libx264",
      "-preset",
      "veryfast",
      "-crf",
      "18",
      ...(keyframeEvery !== undefined ? ["-g", String(keyframeEvery)] : []),
      out,
    ],
    { stdio: "pipe" },
  );
}

/** The real street clip (24 fps) with three 20 s still stretches between its passes. */
export const QUIET_FREEZES = [
  { frame: 300, seconds: 20 },
  { frame: 600, seconds: 20 },
  { frame: 800, seconds: 20 },
] as const;
