/**
 * `cityedge detect`'s engine: one picture, a video file or a camera URL through the daemon's
 * own parts (the camera driver, the detector with its decoder, NMS, tracker and counter), with
 * the messages the daemon would publish collected here instead of sent.
 */
import { spawn, type ChildProcess } from "node:child_process";
import sharp from "sharp";
import { createCamera, letterboxGeometry, resolveFfmpeg, type Camera, type Frame } from "../../drivers/camera/index.js";
import { CAMERA_SCHEMA } from "../config/sections/cameras.js";
import type { DetectionConfig } from "../config/sections/detection.js";
import { createSession, TensorBuffer, type ProviderName, type VariantName } from "../inference/index.js";
import type { Logger } from "../log/logger.js";
import type { CountsBody } from "../contract/index.js";
import { DaemonBus } from "../events/index.js";
import { CameraPipeline } from "./cameraPipeline.js";
import type { LineCounts, ZoneCounts } from "./counting.js";
import { roleTensors } from "./decoders/index.js";
import { loadDetectionManifest, type DetectionManifest } from "./detectionManifest.js";
import { DetectorPart } from "./detectorPart.js";
import { boxesSvg, type DrawnLine } from "./draw.js";
import { fitLetterbox, toSourceNormalized } from "./letterbox.js";
import type { ObjectOut } from "./types.js";

export interface DetectModel {
  id: string;
  manifestFile: string;
  providers: readonly ProviderName[];
  threads: number;
  variant: VariantName | "auto";
}

export interface DetectOptions {
  model: DetectModel;
  detection: DetectionConfig;
  log: Logger;
  /** A picture is run this many times after a warm-up run; the time reported is the median. Default 1. */
  runs?: number;
}

/** One object as `detect` reports it: the daemon's fields, plus the box in source pixels. */
export interface ReportedObject {
  label: string;
  class_id: number;
  score: number;
  /** [x1, y1, x2, y2], 0..1 of the picture. */
  box: [number, number, number, number];
  /** The same box in the picture's pixels. */
  box_px: [number, number, number, number];
  track_id?: number;
}

export interface ImageResult {
  width: number;
  height: number;
  provider: string;
  inference_ms: number;
  objects: ReportedObject[];
}

export interface StreamResult {
  provider: string;
  frames: number;
  seconds: number;
  fps: number;
  inference_ms_avg: number | null;
  /** Per line, per label, crossings each way (the daemon's counts, summed over the run). */
  lines: LineCounts[];
  zones: { zone_id: string; entered: Record<string, number> }[];
  /** Frames a live camera delivered that detection did not take in time. */
  dropped: number;
  /** Frames the camera's motion gate let go without inference (detection.motion). */
  skipped: number;
}

const round = (v: number, d = 4) => Math.round(v * 10 ** d) / 10 ** d;

function report(o: ObjectOut, width: number, height: number): ReportedObject {
  return {
    label: o.label,
    class_id: o.class_id,
    score: round(o.score),
    box: [round(o.x1), round(o.y1), round(o.x2), round(o.y2)],
    box_px: [round(o.x1 * width, 1), round(o.y1 * height, 1), round(o.x2 * width, 1), round(o.y2 * height, 1)],
    ...(o.track_id !== undefined ? { track_id: o.track_id } : {}),
  };
}

/** The counts the pipeline emits, summed over the run. */
class CountsSum {
  readonly lines = new Map<string, Record<string, { in: number; out: number }>>();
  readonly zones = new Map<string, Record<string, number>>();

  add(body: CountsBody): void {
    for (const l of body.lines as LineCounts[]) {
      const sum = this.lines.get(l.line_id) ?? {};
      for (const [label, c] of Object.entries(l.counts)) {
        const s = (sum[label] ??= { in: 0, out: 0 });
        s.in += c.in;
        s.out += c.out;
      }
      this.lines.set(l.line_id, sum);
    }
    for (const z of body.zones as ZoneCounts[]) {
      const sum = this.zones.get(z.zone_id) ?? {};
      for (const [label, n] of Object.entries(z.entered)) sum[label] = (sum[label] ?? 0) + n;
      this.zones.set(z.zone_id, sum);
    }
  }
}

/** A bus for a run: counts summed, detections heard (by nobody) so they are not reported as unheard. */
function runBus(sum?: CountsSum): DaemonBus {
  const bus = new DaemonBus();
  bus.on("counts", (body) => sum?.add(body));
  bus.on("detections", () => undefined);
  return bus;
}

/** Letterboxes a picture exactly as the camera driver's ffmpeg filter does, in the model's channel order. */
export async function letterboxPicture(file: string, m: DetectionManifest): Promise<{ pixels: Buffer; width: number; height: number }> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(file).metadata();
  } catch (err) {
    throw new Error(`${file}: not a picture sharp can read (${(err as Error).message})`);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  const g = letterboxGeometry(width, height, { width: m.input.width, height: m.input.height, letterbox: m.input.letterbox });
  const pad = m.input.letterbox_pad;
  let rgb = await sharp(file)
    .rotate()
    .removeAlpha()
    .resize(g.scaled_width, g.scaled_height, { fit: "fill", kernel: "linear" })
    .extend({
      top: g.pad_y,
      left: g.pad_x,
      bottom: m.input.height - g.scaled_height - g.pad_y,
      right: m.input.width - g.scaled_width - g.pad_x,
      background: { r: pad, g: pad, b: pad },
    })
    .raw()
    .toBuffer();
  if (m.input.color === "bgr") {
    rgb = Buffer.from(rgb);
    for (let i = 0; i < rgb.length; i += 3) {
      const r = rgb[i]!;
      rgb[i] = rgb[i + 2]!;
      rgb[i + 2] = r;
    }
  }
  return { pixels: rgb, width, height };
}

/** Detects the objects in one picture (JPEG, PNG, WebP, …) with the daemon's decoder and NMS. */
export async function detectImage(file: string, o: DetectOptions): Promise<ImageResult> {
  const m = loadDetectionManifest(o.model.manifestFile);
  const pipeline = new CameraPipeline({
    cameraId: "detect",
    modelId: o.model.id,
    manifest: m,
    detection: o.detection,
    bus: runBus(),
    log: o.log,
  });
  const { pixels, width, height } = await letterboxPicture(file, m);
  const session = await createSession(m, { providers: o.model.providers, threads: o.model.threads, variant: o.model.variant, log: o.log });
  try {
    const buffer = new TensorBuffer(m.input, 1);
    buffer.fill(0, { width: m.input.width, height: m.input.height, format: m.input.color === "bgr" ? "bgr24" : "rgb24", data: pixels });
    // The first run pays for allocations and kernel choices; the times reported are the runs after it.
    await session.run({ [m.input.name]: buffer.tensor(1) });
    const times: number[] = [];
    let result: Awaited<ReturnType<typeof session.run>> | undefined;
    for (let i = 0; i < Math.max(1, o.runs ?? 1); i++) {
      const t0 = performance.now();
      result = await session.run({ [m.input.name]: buffer.tensor(1) });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)]!;
    const lb = fitLetterbox(width, height, m.input.width, m.input.height, m.input.letterbox === "center");
    const objects = pipeline.detect(roleTensors(m.output, result!), 0).flatMap((d) => {
      const s = toSourceNormalized(d, lb);
      return s ? [report({ ...s, label: m.labels[s.class_id] ?? String(s.class_id) }, width, height)] : [];
    });
    return { width, height, provider: session.provider, inference_ms: round(ms, 2), objects };
  } finally {
    await session.release();
  }
}

/** Writes the picture with its boxes. */
export async function drawImage(file: string, objects: readonly ReportedObject[], out: string): Promise<void> {
  const asOut: ObjectOut[] = objects.map((o) => ({
    x1: o.box[0],
    y1: o.box[1],
    x2: o.box[2],
    y2: o.box[3],
    score: o.score,
    class_id: o.class_id,
    label: o.label,
  }));
  const img = sharp(file).rotate().removeAlpha();
  const { info } = await img.clone().raw().toBuffer({ resolveWithObject: true });
  const { width, height } = info;
  await img.composite([{ input: boxesSvg(asOut, width, height), top: 0, left: 0 }]).toFile(out);
}

export interface StreamOptions extends DetectOptions {
  /** Frames per second taken from the stream (a file's every frame up to 60). */
  fps: number;
  /** A live camera runs this long; a file runs to its end. */
  durationMs?: number;
  /** Writes the annotated picture as a video here. */
  out?: string;
  /** Resolves to stop early (Ctrl-C). */
  stop?: Promise<void>;
}

/** An ffmpeg encoding the annotated frames; frames go in one at a time, in order. */
class AnnotatedVideo {
  readonly #child: ChildProcess;
  #queue: Promise<void> = Promise.resolve();
  #error: Error | undefined;

  constructor(
    out: string,
    readonly width: number,
    readonly height: number,
    fps: number,
    ffmpeg: string,
    readonly lines: readonly DrawnLine[],
  ) {
    this.#child = spawn(
      ffmpeg,
      [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        `${width}x${height}`,
        "-r",
        String(fps),
        "-i",
        "pipe:0",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        out,
      ],
      { stdio: ["pipe", "ignore", "pipe"] },
    );
    let stderr = "";
    this.#child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    this.#child.on("error", (err) => (this.#error ??= err));
    this.#child.on("exit", (code) => {
      if (code !== 0) this.#error ??= new Error(`ffmpeg writing ${out} exited ${code}: ${stderr.trim().split("\n").at(-1) ?? ""}`);
    });
    this.#child.stdin!.on("error", (err) => (this.#error ??= err));
  }

  /** Copies the picture out of a model-input frame (the letterbox cropped away) and queues it with its boxes. */
  add(frame: Frame, objects: readonly ObjectOut[]): void {
    const lb = frame.letterbox;
    const w = this.width;
    const h = this.height;
    const rgb = Buffer.alloc(w * h * 3);
    const bgr = frame.format === "bgr24";
    for (let y = 0; y < h; y++) {
      const src = ((y + lb.pad_y) * frame.width + lb.pad_x) * 3;
      if (!bgr) frame.data.copy(rgb, y * w * 3, src, src + w * 3);
      else
        for (let x = 0; x < w; x++) {
          const s = src + x * 3;
          const d = (y * w + x) * 3;
          rgb[d] = frame.data[s + 2]!;
          rgb[d + 1] = frame.data[s + 1]!;
          rgb[d + 2] = frame.data[s]!;
        }
    }
    const boxes = [...objects];
    this.#queue = this.#queue.then(async () => {
      if (this.#error) return;
      const drawn = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
        .composite([{ input: boxesSvg(boxes, w, h, this.lines), top: 0, left: 0 }])
        .removeAlpha()
        .raw()
        .toBuffer();
      if (!this.#child.stdin!.write(drawn)) await new Promise((r) => this.#child.stdin!.once("drain", r));
    });
  }

  async close(): Promise<void> {
    await this.#queue;
    this.#child.stdin!.end();
    if (this.#child.exitCode === null) await new Promise((r) => this.#child.once("exit", r));
    if (this.#error) throw this.#error;
  }
}

/**
 * Runs a video file (to its end, as fast as detection goes: the file is read as frames are
 * consumed) or a camera URL (for `durationMs`, or until `stop`) through the daemon's camera
 * driver and detector, and returns the counts and the speed.
 */
export async function detectStream(url: string, o: StreamOptions): Promise<StreamResult> {
  const m = loadDetectionManifest(o.model.manifestFile);
  const file = url.startsWith("file:") || !/^[a-z][a-z0-9+.-]*:/i.test(url);
  const cfg = CAMERA_SCHEMA.parse({
    id: "detect",
    url: file && !url.startsWith("file:") ? `file://${url}` : url,
    fps: o.fps,
    model: o.model.id,
    // A file is read once, as fast as detection takes its frames; a camera keeps its own pace.
    ...(file ? { loop: false, realtime: false, read_as_consumed: true } : {}),
  });
  const camera: Camera = createCamera(cfg, {
    width: m.input.width,
    height: m.input.height,
    pixelFormat: m.input.color === "bgr" ? "bgr24" : "rgb24",
    padValue: m.input.letterbox_pad,
    letterbox: m.input.letterbox,
    log: o.log.child({ module: "camera" }),
    baseDir: process.cwd(),
  });
  const sum = new CountsSum();
  let processed = 0;
  let skipped = 0;
  let video: AnnotatedVideo | undefined;
  let inferMs = 0;
  const detector = new DetectorPart({
    modelId: o.model.id,
    manifestFile: o.model.manifestFile,
    providers: o.model.providers,
    threads: o.model.threads,
    instances: 1,
    variant: o.model.variant,
    warmupRuns: 1,
    maxBatch: 1,
    thread: "worker",
    cameras: [{ id: "detect", fps: o.fps, slot: camera.slot, detection: { ...o.detection, counts_interval_s: 86_400 }, paced: !file }],
    bus: runBus(sum),
    log: o.log.child({ module: "detect" }),
    onSkipped: () => skipped++,
    onFrame: (frame, objects, ms) => {
      processed++;
      inferMs += ms;
      if (o.out) {
        if (!video) {
          const g = letterboxGeometry(frame.letterbox.src_width, frame.letterbox.src_height, {
            width: frame.width,
            height: frame.height,
            letterbox: m.input.letterbox,
          });
          // yuv420p needs even sizes.
          video = new AnnotatedVideo(o.out, g.scaled_width & ~1, g.scaled_height & ~1, o.fps, resolveFfmpeg().path, o.detection.lines);
        }
        video.add(frame, objects);
      }
    },
  });
  await detector.start();
  const provider = detector.session?.provider ?? "none";
  const t0 = performance.now();
  let started = false;
  try {
    await camera.start();
    started = true;
    const deadline = o.durationMs !== undefined ? Date.now() + o.durationMs : Infinity;
    let stopped = false;
    void o.stop?.then(() => (stopped = true));
    // A file is done when its ffmpeg ended and detection took and handled its last frame.
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      if (stopped || Date.now() >= deadline) break;
      const h = camera.health();
      if (camera.state === "stopped" && camera.slot.peek() === undefined && processed + skipped >= Number(h.frames_out)) break;
      if (camera.state === "failed") throw new Error(`cannot read ${url}: ${String(h.error ?? "ffmpeg failed")}`);
    }
  } finally {
    if (started) await camera.stop();
    await detector.stop();
    await video?.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const lines: LineCounts[] = o.detection.lines.map((l) => ({ line_id: l.id, counts: sum.lines.get(l.id) ?? {} }));
  const zones = o.detection.zones.map((z) => ({ zone_id: z.id, entered: sum.zones.get(z.id) ?? {} }));
  return {
    provider,
    frames: processed,
    seconds: round(seconds, 2),
    fps: round(processed / seconds, 1),
    inference_ms_avg: processed > 0 ? round(inferMs / processed, 2) : null,
    lines,
    zones,
    dropped: camera.slot.dropped,
    skipped,
  };
}
