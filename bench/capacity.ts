import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { createCamera, resolveFfmpeg, type Camera } from "../drivers/camera/index.js";
import { CAMERA_SCHEMA } from "../runtime/config/sections/cameras.js";
import { MODEL_SCHEMA } from "../runtime/config/sections/models.js";
import { loadDetectionManifest } from "../runtime/detect/detectionManifest.js";
import { DetectorPart, PipelinePart } from "../runtime/detect/index.js";
import { DaemonBus } from "../runtime/events/events.js";
import type { VariantName } from "../runtime/inference/manifest.js";
import { cpuSeconds, flagValue, repoRoot, round, sharedDataDir } from "./benchProcess.js";
import { BenchUsageError, type Bench, type BenchResult } from "./index.js";
import { freezeClip, QUIET_FREEZES } from "./quietClip.js";

/**
 * `cityedge bench capacity`: how many cameras this device sustains at 10 fps with fewer than 1 %
 * of their frames dropped, and the CPU per camera, per model variant, gating on or off and scene.
 *
 * Each attempt at N cameras runs what the daemon runs for N cameras in this process: N camera
 * drivers (ffmpeg playing the clip in real time, `-re`, looped, the camera's fps filter), one
 * detector part for the model (its sessions shared by the cameras, as the daemon plans them),
 * and one pipeline part per camera (motion gate, decode, NMS, tracking, a counting line). After a
 * warm-up it counts, per camera, the frames the driver offered, the frames the detector took
 * (run or let go by the motion gate) and the frames replaced in the slot before they were taken
 * (dropped), and the CPU of the process and its ffmpeg children. N holds when fewer than 1 % of
 * all frames offered were dropped and every camera got at least 99 % of the fps. N doubles from
 * 1 until one fails or --max-cameras is reached, then bisection finds the largest N that holds.
 *
 * Not included: the outbox and MQTT (detections go to an in-process bus nobody reads; the
 * detect benchmark measures that part).
 */

export const SCENES = ["busy", "quiet"] as const;
export type Scene = (typeof SCENES)[number];

export interface CapacityOptions {
  /** The model's manifest file. */
  manifestFile: string;
  variant: VariantName;
  gating: boolean;
  scene: Scene;
  /** The clip each camera plays (the quiet scene is made from it). */
  clip: string;
  fps: number;
  threads: number;
  warmupS: number;
  seconds: number;
  maxCameras: number;
  /** Measure this many cameras only, no search. */
  cameras?: number;
  /** Where derived clips are kept between runs. */
  cacheDir: string;
}

/** One camera over the measured window. `offered = delivered + dropped + pending_change`. */
export interface CameraWindow {
  id: string;
  /** Frames the camera driver put in the slot. */
  offered: number;
  /** Frames the detector took (run, or let go by the motion gate). */
  delivered: number;
  /** Frames replaced in the slot before they were taken. */
  dropped: number;
  /** A frame waiting in the slot at the end, less one waiting at the start (-1, 0 or 1). */
  pending_change: number;
  /** Taken frames that ran inference, and that the motion gate let go. */
  inferred: number;
  skipped: number;
  fps: number;
}

export interface Attempt {
  cameras: number;
  holds: boolean;
  window_s: number;
  min_fps: number;
  mean_fps: number;
  /** Dropped over offered, all cameras, in %. */
  drop_pct: number;
  /** Share of the frames taken that ran inference, in %. */
  inferred_pct: number;
  /** CPU of this process (detector, pipelines, frame reading) and its ffmpeg children, % of one core. */
  cpu_pct: number;
  cpu_pct_per_camera: number;
  ffmpeg_cpu_pct: number;
  load_average: number;
  per_camera: CameraWindow[];
}

export interface CapacityRow {
  model: string;
  variant: VariantName;
  gating: boolean;
  scene: Scene;
  fps: number;
  threads: number;
  /** The largest N that held (0: not even one camera). */
  sustained: number;
  /** The attempt at `sustained` cameras, or the first one when none held. */
  at: Attempt | undefined;
  /** True when the search stopped at --max-cameras with every attempt holding. */
  capped: boolean;
  attempts: Attempt[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The manifest's variants; throws naming those it has when `variant` is not one of them. */
export function checkVariant(manifestFile: string, variant: string): VariantName {
  const manifest = loadDetectionManifest(manifestFile);
  const has = Object.keys(manifest.variants);
  if (!has.includes(variant))
    throw new BenchUsageError(`--variant "${variant}": model ${manifest.id} has no such variant (it has: ${has.join(", ")})`);
  return variant as VariantName;
}

/** Runs `n` cameras as the daemon does and measures them over the window after the warm-up. */
export async function measureCameras(o: CapacityOptions, clips: readonly string[], n: number): Promise<Attempt> {
  const log = pino({ level: "silent" });
  const manifest = loadDetectionManifest(o.manifestFile);
  const model = MODEL_SCHEMA.parse({ id: "bench", manifest: o.manifestFile, providers: ["cpu"], threads: o.threads, variant: o.variant });
  const bus = new DaemonBus();
  const cfgs = Array.from({ length: n }, (_, i) =>
    CAMERA_SCHEMA.parse({
      id: `cam-${i}`,
      url: `file://${clips[i % clips.length]}`,
      fps: o.fps,
      loop: true,
      realtime: true,
      model: "bench",
      detection: { lines: [{ id: "road", from: [0.25, 0.55], to: [1, 0.55] }], counts_interval_s: 3600, motion: { enabled: o.gating } },
    }),
  );
  // The frames the daemon asks the cameras for: the model's input size, channel order and letterbox.
  const cams: Camera[] = cfgs.map((cfg) =>
    createCamera(cfg, {
      width: manifest.input.width,
      height: manifest.input.height,
      pixelFormat: manifest.input.color === "bgr" ? "bgr24" : "rgb24",
      padValue: manifest.input.letterbox_pad,
      letterbox: manifest.input.letterbox,
      log,
      baseDir: process.cwd(),
    }),
  );
  const detector = new DetectorPart({
    modelId: "bench",
    manifestFile: o.manifestFile,
    providers: model.providers,
    threads: model.threads,
    instances: model.instances,
    variant: model.variant,
    warmupRuns: model.warmup_runs,
    thread: model.inference_thread,
    maxBatch: model.max_batch,
    cameras: [],
    plannedCameras: n,
    bus,
    log,
  });
  const pipelines = cams.map(
    (cam, i) =>
      new PipelinePart({
        camera: { id: cam.id, fps: o.fps, slot: cam.slot, detection: cfgs[i]!.detection, paced: !cam.backpressure },
        detector,
        manifestFile: o.manifestFile,
        bus,
        log,
      }),
  );
  try {
    await detector.start();
    for (const p of pipelines) await p.start();
    await Promise.all(cams.map((c) => c.start()));
    await Promise.all(cams.map((c) => c.slot.next()));
    // Frames buffered while ffmpeg probed the clip arrive in a burst: measure after it.
    await sleep(o.warmupS * 1000);
    const snap = () => {
      const cpu = process.cpuUsage();
      return {
        t: process.hrtime.bigint(),
        cpu: (cpu.user + cpu.system) / 1e6,
        cams: cams.map((c) => {
          const motion = detector.health().cameras[c.id]?.motion;
          return {
            offered: c.health().frames_in,
            taken: c.slot.taken,
            dropped: c.slot.dropped,
            pending: c.slot.peek() !== undefined ? 1 : 0,
            skipped: motion?.skipped ?? 0,
            pid: c.pid,
            ffmpeg: cpuSeconds(c.pid),
          };
        }),
      };
    };
    const a = snap();
    await sleep(o.seconds * 1000);
    const b = snap();
    const secs = Number(b.t - a.t) / 1e9;
    const per: CameraWindow[] = cams.map((c, i) => {
      const x = a.cams[i]!;
      const y = b.cams[i]!;
      const delivered = y.taken - x.taken;
      const skipped = y.skipped - x.skipped;
      return {
        id: c.id,
        offered: y.offered - x.offered,
        delivered,
        dropped: y.dropped - x.dropped,
        pending_change: y.pending - x.pending,
        inferred: delivered - skipped,
        skipped,
        fps: delivered / secs,
      };
    });
    // A camera whose ffmpeg restarted in the window has no CPU figure for it.
    const ffmpegCpu = b.cams.reduce((s, y, i) => s + (y.pid === a.cams[i]!.pid ? y.ffmpeg - a.cams[i]!.ffmpeg : NaN), 0);
    const cpuPct = ((b.cpu - a.cpu + ffmpegCpu) / secs) * 100;
    const offered = per.reduce((s, c) => s + c.offered, 0);
    const dropped = per.reduce((s, c) => s + c.dropped, 0);
    const delivered = per.reduce((s, c) => s + c.delivered, 0);
    const inferred = per.reduce((s, c) => s + c.inferred, 0);
    const dropPct = offered > 0 ? (dropped / offered) * 100 : 100;
    const minFps = Math.min(...per.map((c) => c.fps));
    // A camera keeps its rate when it got 99 % of the window's frames, give or take the one frame
    // that the window's two edges can cut off (at 10 fps over 10 s, 99 of 100 is on the edge).
    const keptRate = per.every((c) => c.delivered + 1 >= 0.99 * o.fps * secs);
    return {
      cameras: n,
      holds: dropPct < 1 && keptRate,
      window_s: round(secs, 2),
      min_fps: round(minFps, 2),
      mean_fps: round(delivered / secs / n, 2),
      drop_pct: round(dropPct, 2),
      inferred_pct: round(delivered > 0 ? (inferred / delivered) * 100 : 0, 1),
      cpu_pct: round(cpuPct),
      cpu_pct_per_camera: round(cpuPct / n),
      ffmpeg_cpu_pct: round((ffmpegCpu / secs) * 100),
      load_average: round(os.loadavg()[0]!, 2),
      per_camera: per,
    };
  } finally {
    await Promise.all(cams.map((c) => c.stop()));
    for (const p of pipelines) await p.stop();
    await detector.stop();
  }
}

/** Doubling from 1 until an attempt fails (or `max` holds), then bisection between the last that held and the first that failed. */
export async function searchCapacity(
  max: number,
  attempt: (n: number) => Promise<Attempt>,
): Promise<{ sustained: number; capped: boolean; attempts: Attempt[] }> {
  const attempts: Attempt[] = [];
  const run = async (n: number) => {
    const a = await attempt(n);
    attempts.push(a);
    return a.holds;
  };
  let held = 0;
  let failed = 0;
  for (let n = 1; ; n = Math.min(max, n * 2)) {
    if (!(await run(n))) {
      failed = n;
      break;
    }
    held = n;
    if (n >= max) return { sustained: held, capped: true, attempts };
  }
  while (failed - held > 1) {
    const mid = Math.floor((held + failed) / 2);
    if (await run(mid)) held = mid;
    else failed = mid;
  }
  return { sustained: held, capped: false, attempts };
}

function ffprobeClip(file: string): { fps: number; frames: number; seconds: number } {
  const out = execFileSync(
    "ffprobe",
    ["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=r_frame_rate,nb_read_packets", "-of", "json", file],
    { encoding: "utf8" },
  );
  const s = (JSON.parse(out) as { streams: { r_frame_rate: string; nb_read_packets: string }[] }).streams[0];
  if (!s) throw new Error(`${file}: no video stream`);
  const [num, den] = s.r_frame_rate.split("/").map(Number);
  const fps = num! / (den || 1);
  const frames = Number(s.nb_read_packets);
  return { fps, frames, seconds: frames / fps };
}

/**
 * The clips the cameras play: for `busy` the clip itself; for `quiet` the clip with 20 s still
 * stretches between its passes (bench/quietClip.ts), cut into `phases` rotations of itself so
 * that the cameras' passes do not all come at the same moment (as at separate junctions). Derived
 * clips are cached in `cacheDir`, keyed by the source's path, size and time.
 */
export function sceneClips(clip: string, scene: Scene, phases: number, cacheDir: string, ffmpeg = "ffmpeg"): string[] {
  if (scene === "busy") return [clip];
  const st = statSync(clip);
  const key = createHash("sha256")
    .update(`${path.resolve(clip)}:${st.size}:${st.mtimeMs}`)
    .digest("hex")
    .slice(0, 16);
  const dir = path.join(cacheDir, `quiet-${key}`);
  mkdirSync(dir, { recursive: true });
  const quiet = path.join(dir, "quiet.mp4");
  const info = ffprobeClip(clip);
  if (!existsSync(quiet)) {
    // The real clip's still frames are between its passes; another clip is frozen at its quarters.
    const freezes =
      path.basename(clip) === "street-traffic-640x352.mp4"
        ? QUIET_FREEZES
        : [1, 2, 3].map((k) => ({ frame: Math.floor((info.frames * k) / 4), seconds: 20 }));
    const tmp = path.join(dir, `quiet.${process.pid}.mp4`);
    freezeClip(clip, tmp, info.fps, freezes, ffmpeg, Math.max(1, Math.round(info.fps)));
    renameSync(tmp, quiet);
  }
  const length = ffprobeClip(quiet).seconds;
  const out = [quiet];
  for (let k = 1; k < phases; k++) {
    const at = Math.round((length * k) / phases);
    const file = path.join(dir, `quiet-from-${at}s.mp4`);
    if (!existsSync(file)) {
      // Keyframes every second: the rotation is cut without re-encoding (concat demuxer, in/out points).
      const list = path.join(dir, `list-${at}.${process.pid}.txt`);
      const q = quiet.replace(/'/g, "'\\''");
      writeFileSync(list, `file '${q}'\ninpoint ${at}\nfile '${q}'\noutpoint ${at}\n`);
      const tmp = path.join(dir, `quiet-from-${at}s.${process.pid}.mp4`);
      try {
        execFileSync(ffmpeg, ["-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", list, "-c", "copy", tmp], {
          stdio: "pipe",
        });
      } finally {
        rmSync(list, { force: true });
      }
      renameSync(tmp, file);
    }
    out.push(file);
  }
  return out;
}

/** Every combination of the options' variants, gating settings and scenes: one row each. */
export async function runCapacity(
  base: Omit<CapacityOptions, "variant" | "gating" | "scene">,
  combos: { variant: VariantName; gating: boolean; scene: Scene }[],
): Promise<CapacityRow[]> {
  const ffmpeg = resolveFfmpeg().path;
  const manifest = loadDetectionManifest(base.manifestFile);
  const rows: CapacityRow[] = [];
  for (const c of combos) {
    const o: CapacityOptions = { ...base, ...c };
    const clips = sceneClips(o.clip, o.scene, Math.min(8, o.cameras ?? o.maxCameras), o.cacheDir, ffmpeg);
    const attempt = (n: number) => measureCameras(o, clips, n);
    const found =
      o.cameras !== undefined
        ? await attempt(o.cameras).then((a) => ({ sustained: a.holds ? a.cameras : 0, capped: false, attempts: [a] }))
        : await searchCapacity(o.maxCameras, attempt);
    rows.push({
      model: manifest.id,
      variant: o.variant,
      gating: o.gating,
      scene: o.scene,
      fps: o.fps,
      threads: o.threads,
      ...found,
      at: found.attempts.find((a) => a.cameras === found.sustained && a.holds) ?? found.attempts[0],
    });
  }
  return rows;
}

/** `--model ID`: a manifest file, or models/ID/manifest.json of this checkout. */
function manifestOf(root: string, arg: string): string {
  if (arg.endsWith(".json")) {
    if (!existsSync(arg)) throw new BenchUsageError(`--model "${arg}": file not found`);
    return path.resolve(arg);
  }
  const file = path.join(root, "models", arg, "manifest.json");
  if (!existsSync(file)) throw new BenchUsageError(`--model "${arg}": no models/${arg}/manifest.json in ${root}`);
  return file;
}

function listOf<T extends string>(value: string, name: string, allowed: readonly T[]): T[] {
  const xs = value.split(",").map((x) => x.trim());
  for (const x of xs) if (!allowed.includes(x as T)) throw new BenchUsageError(`${name} "${x}": expected ${allowed.join(" or ")}`);
  return xs as T[];
}

function numberOf(args: readonly string[], name: string, fallback: number, min: number, max: number, integer = false): number {
  const v = flagValue(args, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
    throw new BenchUsageError(`${name} must be ${integer ? "a whole number" : "a number"} ${min}..${max}, got "${v}"`);
  return n;
}

/** The options of `cityedge bench capacity`, checked; throws naming the option at fault. */
export function parseCapacityArgs(args: readonly string[]): {
  base: Omit<CapacityOptions, "variant" | "gating" | "scene">;
  combos: { variant: VariantName; gating: boolean; scene: Scene }[];
} {
  const root = repoRoot();
  const manifestFile = manifestOf(root, flagValue(args, "--model") ?? "yolox_nano");
  const variants = (flagValue(args, "--variant") ?? "fp32").split(",").map((v) => checkVariant(manifestFile, v.trim()));
  const gatings = listOf(flagValue(args, "--gating") ?? "off", "--gating", ["on", "off"] as const).map((g) => g === "on");
  const scenes = listOf(flagValue(args, "--scene") ?? "busy", "--scene", SCENES);
  const clip = flagValue(args, "--clip") ?? path.join(sharedDataDir(root), "video/street-traffic-640x352.mp4");
  if (!existsSync(clip))
    throw new BenchUsageError(`--clip "${clip}": file not found (the real clip comes from the shared data, CITYEDGE_SHARED_DATA)`);
  const camerasArg = flagValue(args, "--cameras");
  const base = {
    manifestFile,
    clip: path.resolve(clip),
    fps: numberOf(args, "--fps", 10, 0.5, 60),
    threads: numberOf(args, "--threads", 2, 1, 64, true),
    warmupS: numberOf(args, "--warmup", 4, 0, 600),
    seconds: numberOf(args, "--seconds", 15, 1, 3600),
    maxCameras: numberOf(args, "--max-cameras", 32, 1, 256, true),
    ...(camerasArg !== undefined ? { cameras: numberOf(args, "--cameras", 1, 1, 256, true) } : {}),
    cacheDir: path.join(os.tmpdir(), "cityedge-bench-capacity"),
  };
  const combos = variants.flatMap((variant) => gatings.flatMap((gating) => scenes.map((scene) => ({ variant, gating, scene }))));
  return { base, combos };
}

export const CAPACITY_COLUMNS = [
  "model",
  "variant",
  "gating",
  "scene",
  "cameras sustained",
  "CPU % per camera",
  "fps (min / mean)",
  "drop %",
  "inferred %",
];

export function capacityTable(rows: readonly CapacityRow[]): (string | number)[][] {
  return rows.map((r) => [
    r.model,
    r.variant,
    r.gating ? "on" : "off",
    r.scene,
    `${r.sustained}${r.capped ? "+" : ""}`,
    r.at ? r.at.cpu_pct_per_camera : "n/a",
    r.at ? `${r.at.min_fps} / ${r.at.mean_fps}` : "n/a",
    r.at ? r.at.drop_pct : "n/a",
    r.at ? r.at.inferred_pct : "n/a",
  ]);
}

/**
 * `cityedge bench capacity [--model ID|MANIFEST] [--variant fp32,int8] [--gating on,off]
 * [--scene busy,quiet] [--fps 10] [--max-cameras N] [--cameras N] [--seconds S] [--warmup S]
 * [--threads N] [--clip FILE]`: one table row per combination of the listed values.
 */
export const capacityBench: Bench = async (args) => {
  const { base, combos } = parseCapacityArgs(args);
  const load = os.loadavg();
  const rows = await runCapacity(base, combos);
  const figures: BenchResult["figures"] = {
    cores: os.availableParallelism(),
    threads: base.threads,
    fps: base.fps,
    clip: base.clip,
    warmup_s: base.warmupS,
    window_s: base.seconds,
    max_cameras: base.maxCameras,
    load_average_before: load.map((x) => round(x, 2)).join(" "),
    load_average_after: os
      .loadavg()
      .map((x) => round(x, 2))
      .join(" "),
  };
  for (const r of rows) {
    const tag = `${r.variant} ${r.scene} gating ${r.gating ? "on" : "off"}`;
    figures[`${tag}: attempts`] = r.attempts
      .map((a) => `${a.cameras}:${a.holds ? "held" : "failed"} (${a.min_fps} fps, ${a.drop_pct} % dropped, load ${a.load_average})`)
      .join("; ");
  }
  return [{ name: "capacity", figures, table: { columns: CAPACITY_COLUMNS, rows: capacityTable(rows) }, data: rows }];
};
