import { spawn, execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import pino from "pino";
import YAML from "yaml";
import { loadDetectionManifest } from "../runtime/detect/detectionManifest.js";
import { createSession, TensorBuffer } from "../runtime/inference/index.js";
import { flagValue, freePort, percentile, repoRoot, round, rssMiB, slope, startMosquitto, stopChild, sharedDataDir } from "./benchProcess.js";
import type { Bench, BenchResult } from "./index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLIP_FPS = 24;

/**
 * Bare `session.run` throughput of the model: the ceiling the pipeline is measured against.
 * `instances` sessions of `threads / instances` intra-op threads each run side by side (each in
 * its own worker thread when more than one), on the same blank input, as fast as they can.
 */
async function bareFps(
  manifestFile: string,
  threads: number,
  seconds: number,
  allowSpinning: boolean,
  instances = 1,
): Promise<{ fps: number; ms: number }> {
  const manifest = loadDetectionManifest(manifestFile);
  const per = Math.max(1, Math.floor(threads / instances));
  const log = pino({ level: "silent" });
  const models = await Promise.all(
    Array.from({ length: instances }, () =>
      createSession(manifest, { providers: ["cpu"], threads: per, variant: "fp32", allowSpinning, thread: instances > 1 ? "worker" : "main", log }),
    ),
  );
  const buf = new TensorBuffer(manifest.input, 1);
  buf.data.fill(manifest.input.letterbox_pad);
  const feeds = { [manifest.input.name]: buf.tensor(1) };
  for (const model of models) for (let i = 0; i < 5; i++) await model.run(feeds);
  let n = 0;
  const t0 = performance.now();
  await Promise.all(
    models.map(async (model) => {
      while (performance.now() - t0 < seconds * 1000) {
        await model.run(feeds);
        n++;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  for (const model of models) await model.release();
  return { fps: n / elapsed, ms: (elapsed * 1000) / n };
}

/** The peer baseline (OpenCV VideoCapture → cv2.dnn → decode → NMS → paho MQTT), in its own process. */
async function peerFps(
  root: string,
  model: string,
  clip: string,
  threads: number,
  mqttPort: number | undefined,
): Promise<Record<string, number | string>> {
  const script = path.resolve(root, "../runtime/shared/peers/opencv_dnn_pipeline.py");
  if (!existsSync(script)) return { peer: `unavailable: ${script} not found` };
  const args = [
    script,
    model,
    clip,
    "--frames",
    "300",
    "--threads",
    String(threads),
    ...(mqttPort ? ["--mqtt", `127.0.0.1:${mqttPort}`, "--topic", "peer/detections"] : []),
  ];
  return new Promise((resolve) => {
    execFile("/usr/bin/python3", args, { timeout: 600_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        resolve({ peer: `failed: ${(stderr || err.message).trim().split("\n").pop()}` });
        return;
      }
      const line = stdout.trim().split("\n").pop() ?? "{}";
      const r = JSON.parse(line) as { fps: number; ms: Record<string, number> };
      resolve({ peer_fps: r.fps, peer_infer_ms: r.ms.infer ?? NaN });
    });
  });
}

interface PipelineFigures {
  fps: number;
  frames: number;
  p50: number;
  p99: number;
  rss: number[];
  rssTimes: number[];
  cameras: number;
}

/**
 * The real daemon in its own process: cameras playing the clip (file → ffmpeg, looped), one
 * detector, the SQLite outbox and MQTT to a broker; a subscriber here counts every detections
 * message (publish_empty is on, so one per processed frame) and its latency from the frame's
 * arrival in the daemon.
 */
async function pipeline(
  root: string,
  clip: string,
  threads: number,
  instances: number | "auto",
  cameras: number,
  realtime: boolean,
  warmS: number,
  seconds: number,
  dir: string,
  mqttPort: number | undefined,
): Promise<PipelineFigures> {
  const port = mqttPort ?? (await freePort());
  const cfg = {
    device_id: "bench-1",
    data_dir: path.join(dir, "data"),
    log_level: "warn",
    mqtt: { url: `mqtt://127.0.0.1:${port}` },
    broker: { enabled: mqttPort === undefined, host: "127.0.0.1", port },
    http: { enabled: false, health_publish_ms: 0 },
    commands: { enabled: false },
    live_view: { enabled: false },
    cameras: Array.from({ length: cameras }, (_, i) => ({
      id: `bench-${i}`,
      url: `file://${clip}`,
      fps: 60,
      loop: true,
      realtime,
      // Unpaced ("--source=fast"): ffmpeg decodes only the frames detection takes.
      read_as_consumed: !realtime,
      model: "yolox",
      detection: { publish_empty: true, lines: [{ id: "road", from: [0.25, 0.55], to: [1, 0.55] }], counts_interval_s: 10 },
    })),
    models: [{ id: "yolox", manifest: path.join(root, "models/yolox_nano/manifest.json"), providers: ["cpu"], threads, instances, variant: "fp32" }],
  };
  const file = path.join(dir, "bench.yaml");
  writeFileSync(file, YAML.stringify(cfg));
  const cli = path.join(HERE, "..", "runtime", `cli${path.extname(fileURLToPath(import.meta.url))}`);
  const child = spawn(process.execPath, [...process.execArgv, cli, "run", "--config", file], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const sub = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 200 });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the benchmark daemon did not connect: ${stderr}`)), 60_000);
      sub.once("connect", () => {
        clearTimeout(t);
        resolve();
      });
    });
    await sub.subscribeAsync("cityedge/bench-1/cameras/+/detections", { qos: 1 });
    let counting = false;
    let frames = 0;
    const lat: number[] = [];
    let first: () => void = () => undefined;
    const started = new Promise<void>((r) => (first = r));
    sub.on("message", (_topic, payload) => {
      first();
      if (!counting) return;
      frames++;
      const ts = /"frame_ts":"([^"]+)"/.exec(payload.toString())?.[1];
      if (ts) lat.push(Date.now() - Date.parse(ts));
    });
    await Promise.race([
      started,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no detections within 120 s: ${stderr}`)), 120_000)),
      new Promise((_, reject) => child.once("exit", (code) => reject(new Error(`the benchmark daemon exited (${code}): ${stderr}`)))),
    ]);
    await new Promise((r) => setTimeout(r, warmS * 1000));
    counting = true;
    const t0 = Date.now();
    const rss: number[] = [];
    const rssTimes: number[] = [];
    while (Date.now() - t0 < seconds * 1000) {
      rss.push(rssMiB(child.pid));
      rssTimes.push((Date.now() - t0) / 1000);
      await new Promise((r) => setTimeout(r, Math.min(1000, seconds * 1000 - (Date.now() - t0) + 1)));
    }
    counting = false;
    const elapsed = (Date.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    return { fps: frames / elapsed, frames, p50: percentile(lat, 50), p99: percentile(lat, 99), rss, rssTimes, cameras };
  } finally {
    await sub.endAsync(true);
    await stopChild(child);
  }
}

/**
 * `cityedge bench detect [--duration=S] [--rounds=N] [--threads=N] [--instances=auto|N] [--cameras=N] [--source=realtime|fast]`: bare session.run fps, the full pipeline's
 * fps (file → ffmpeg → detect → outbox → MQTT), the peer OpenCV pipeline's fps, the ratios,
 * frame-to-subscriber latency and the daemon's RSS over the run (--duration=600 for the
 * 10-minute RSS check).
 */
export const detectBench: Bench = async (args) => {
  const root = repoRoot();
  const data = sharedDataDir(root);
  const model = path.join(data, "models/yolox_nano.onnx");
  const clip = path.join(data, "video/street-traffic-640x352.mp4");
  if (!existsSync(model) || !existsSync(clip))
    return [{ name: "detect", figures: { skipped: `shared data not found under ${data} (CITYEDGE_SHARED_DATA)` } }];
  const threads = Number(flagValue(args, "--threads") ?? 2);
  const seconds = Number(flagValue(args, "--duration") ?? 30);
  const manifestFile = path.join(root, "models/yolox_nano/manifest.json");
  const cameraArg = flagValue(args, "--cameras") !== undefined ? Math.max(1, Number(flagValue(args, "--cameras"))) : undefined;
  const realtime = (flagValue(args, "--source") ?? "fast") === "realtime";
  const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-bench-detect-"));
  const broker = await startMosquitto(dir);
  try {
    // Other load on the machine drifts, so the measurements are interleaved over rounds and
    // pooled: each round measures bare, peer and pipeline back to back.
    const rounds = Math.max(1, Number(flagValue(args, "--rounds") ?? 2));
    const bareS = Math.min(10, Math.max(3, seconds / 4));
    const instancesArg = flagValue(args, "--instances");
    const instances: number | "auto" = instancesArg === undefined || instancesArg === "auto" ? "auto" : Math.max(1, Number(instancesArg));
    const per: { bare: number; bareSpin: number; bareNoSpin: number; bareSplit: number; bareMs: number; peer: number; p: PipelineFigures }[] = [];
    let peerExtra: Record<string, number | string> = {};
    for (let r = 0; r < rounds; r++) {
      // The ceiling is the best way onnxruntime-node runs this model on these threads: one
      // session spinning (onnxruntime's default), one not spinning (ours), or one 1-thread session
      // per thread side by side (what the daemon's "auto" instances do on the CPU). The last two
      // are measured right before and right after the pipeline and averaged, so a change in the
      // machine's other load during the round weighs on both sides alike.
      const spin = await bareFps(manifestFile, threads, bareS, true);
      const before = await bareFps(manifestFile, threads, bareS, false);
      const splitBefore = threads > 1 ? await bareFps(manifestFile, threads, bareS, false, threads) : before;
      const peer = await peerFps(root, model, clip, threads, broker?.port);
      peerExtra = peer;
      const guess = Math.max(spin.fps, before.fps, splitBefore.fps);
      // "realtime": each camera plays the clip at its 24 fps, and just enough cameras offer more
      // frames than the model can take (every frame offered is decoded and read, taken or not:
      // what live cameras cost).
      // "fast" (the default): the file read as fast as detection takes frames, one camera per
      // instance (a camera's frames go through one instance at a time, in order).
      const perInstance = instances === "auto" ? threads : instances;
      const k = cameraArg ?? (realtime ? Math.min(8, Math.max(1, Math.ceil((guess * 1.05) / CLIP_FPS))) : perInstance);
      const p = await pipeline(root, clip, threads, instances, k, realtime, 8, seconds, dir, broker?.port);
      const after = await bareFps(manifestFile, threads, bareS, false);
      const splitAfter = threads > 1 ? await bareFps(manifestFile, threads, bareS, false, threads) : after;
      const noSpin = (before.fps + after.fps) / 2;
      const split = (splitBefore.fps + splitAfter.fps) / 2;
      const bare = Math.max(spin.fps, noSpin, split);
      per.push({
        bare,
        bareSpin: spin.fps,
        bareNoSpin: noSpin,
        bareSplit: split,
        bareMs: 1000 / bare,
        peer: typeof peer.peer_fps === "number" ? peer.peer_fps : NaN,
        p,
      });
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const median = (xs: number[]) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        50,
      );
    const bareFpsAll = mean(per.map((x) => x.bare));
    const pipeFpsAll = mean(per.map((x) => x.p.fps));
    const peerAll = mean(per.map((x) => x.peer));
    const last = per[per.length - 1]!.p;
    const half = Math.floor(last.rss.length / 2);
    const list = (f: (x: (typeof per)[number]) => number, d = 1) => per.map((x) => round(f(x), d)).join(" / ");
    const figures: BenchResult["figures"] = {
      model: "YOLOX-Nano fp32 416x416 (cpu)",
      threads,
      broker: broker ? "mosquitto" : "embedded aedes",
      rounds,
      bare_session_run_fps: round(bareFpsAll),
      bare_fps_per_round: list((x) => x.bare),
      bare_fps_spinning_per_round: list((x) => x.bareSpin),
      bare_fps_not_spinning_per_round: list((x) => x.bareNoSpin),
      [`bare_fps_${threads}x1_thread_per_round`]: list((x) => x.bareSplit),
      bare_fps_note: `bare = best of: 1 session x ${threads} threads spinning, not spinning, ${threads} sessions x 1 thread side by side; the last two are the mean of a run before and a run after the pipeline window`,
      pipeline_instances:
        instances === "auto"
          ? `auto (${Math.min(threads, last.cameras)} x ${Math.max(1, Math.floor(threads / Math.min(threads, last.cameras)))} thread)`
          : instances,
      bare_session_run_ms: round(mean(per.map((x) => x.bareMs)), 2),
      pipeline_fps: round(pipeFpsAll),
      pipeline_fps_per_round: list((x) => x.p.fps),
      pipeline_frames: per.reduce((a, x) => a + x.p.frames, 0),
      pipeline_cameras: `${last.cameras} x clip, ${realtime ? `real time (${CLIP_FPS} fps each)` : "read as detection takes frames"}, looped`,
      ratio_pipeline_to_bare: round(pipeFpsAll / bareFpsAll, 3),
      ratio_pipeline_to_bare_per_round: list((x) => x.p.fps / x.bare, 3),
      ratio_pipeline_to_bare_median: round(median(per.map((x) => x.p.fps / x.bare)), 3),
      peer_fps: Number.isFinite(peerAll) ? round(peerAll, 2) : String(peerExtra.peer ?? "n/a"),
      peer_fps_per_round: list((x) => x.peer, 2),
      ratio_pipeline_to_peer: Number.isFinite(peerAll) ? round(pipeFpsAll / peerAll, 2) : "n/a",
      ratio_pipeline_to_peer_per_round: list((x) => x.p.fps / x.peer, 2),
      ratio_pipeline_to_peer_median: round(median(per.map((x) => x.p.fps / x.peer)), 2),
      latency_frame_to_subscriber_p50_ms: list((x) => x.p.p50, 0),
      latency_frame_to_subscriber_p99_ms: list((x) => x.p.p99, 0),
      rss_first_mib: round(last.rss[0] ?? 0),
      rss_at_60s_mib: last.rssTimes.some((t) => t >= 60) ? round(last.rss[last.rssTimes.findIndex((t) => t >= 60)]!) : "n/a (window < 60 s)",
      rss_last_mib: round(last.rss[last.rss.length - 1] ?? 0),
      rss_max_mib: round(Math.max(...last.rss)),
      // A slope over seconds is noise (GC, allocator); it means something from minutes on.
      rss_second_half_slope_mib_per_min:
        seconds >= 120 ? round(slope(last.rssTimes.slice(half), last.rss.slice(half)) * 60, 2) : "n/a (use --duration=600)",
      pipeline_window_s: seconds,
    };
    return [{ name: "detect", figures }];
  } finally {
    await stopChild(broker?.child);
    rmSync(dir, { recursive: true, force: true });
  }
};
