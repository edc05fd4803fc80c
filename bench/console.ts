import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import sharp from "sharp";
import { createCamera, resolveFfmpeg, type Camera, type Frame } from "../drivers/camera/index.js";
import { letterboxGeometry } from "../drivers/camera/letterbox.js";
import { CAMERA_SCHEMA } from "../runtime/config/sections/cameras.js";
import { framePicture } from "../runtime/detect/picture.js";
import type { BenchResult } from "./index.js";
import { cpuSeconds, repoRoot, round, runFfmpeg, stopChild } from "./benchProcess.js";

/**
 * What the web console costs the device, on this machine: the camera's ffmpeg with stills at the
 * camera's resolution against without (alternating rounds, same source), the daemon's CPU per
 * live picture (a JPEG of the model-size frame, only while someone watches), and, for
 * comparison, the MPEG-1 live view's ffmpeg encoding the same camera. `--duration=S` sets each
 * measurement's length (default 6), `--rounds=N` the alternating rounds (default 2).
 */

/** A camera on `file` paced in real time at 10 fps for `seconds`: its ffmpeg's CPU (% of one core), frames and stills per second. */
async function cameraCpu(file: string, stillInterval: number, seconds: number): Promise<{ cpu: number; fps: number; stills: number }> {
  const cfg = CAMERA_SCHEMA.parse({ id: "bench", url: `file://${file}`, fps: 10, loop: true, realtime: true, still_interval_s: stillInterval });
  const cam: Camera = createCamera(cfg, { log: pino({ level: "silent" }), baseDir: process.cwd(), width: 416, height: 256 });
  await cam.start();
  try {
    await cam.slot.next();
    await new Promise((r) => setTimeout(r, 1500));
    const pid = cam.pid;
    const f0 = cam.health().frames_in;
    const c0 = cpuSeconds(pid);
    let stills = 0;
    let last = cam.stills.at(-1);
    const t0 = Date.now();
    while (Date.now() - t0 < seconds * 1000) {
      await Promise.race([cam.slot.next(), new Promise((r) => setTimeout(r, 100))]);
      const f = cam.slot.take();
      if (f) cam.slot.release(f);
      const s = cam.stills.at(-1);
      if (s && s !== last) {
        stills++;
        last = s;
      }
    }
    const secs = (Date.now() - t0) / 1000;
    return { cpu: cam.pid === pid ? ((cpuSeconds(pid) - c0) / secs) * 100 : NaN, fps: (cam.health().frames_in - f0) / secs, stills: stills / secs };
  } finally {
    await cam.stop();
  }
}

/** A letterboxed 416x256 frame of a real picture, as the camera hands detection (and the console) its frames. */
async function modelFrame(picture: string): Promise<Frame> {
  const meta = await sharp(picture).metadata();
  const lb = letterboxGeometry(meta.width, meta.height, { width: 416, height: 256, letterbox: "top-left" });
  const scaled = await sharp(picture).resize(lb.scaled_width, lb.scaled_height).removeAlpha().raw().toBuffer();
  const data = Buffer.alloc(416 * 256 * 3, 114);
  for (let y = 0; y < lb.scaled_height; y++) scaled.copy(data, y * 416 * 3, y * lb.scaled_width * 3, (y + 1) * lb.scaled_width * 3);
  const { scaled_width: _w, scaled_height: _h, ...letterbox } = lb;
  return { camera_id: "bench", index: 0, width: 416, height: 256, format: "rgb24", data, arrival_ms: Date.now(), letterbox };
}

/** What the console's hub does per live picture: copy the frame, crop the letterbox, encode a JPEG at quality 70. */
async function livePictureCost(frame: Frame, n: number): Promise<{ wallMs: number; cpuMs: number; bytes: number }> {
  const encode = async () => {
    const copy = { ...frame, data: Buffer.from(frame.data) };
    const { data, width, height } = await framePicture(copy);
    return sharp(data, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 70 })
      .toBuffer();
  };
  for (let i = 0; i < 20; i++) await encode();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let bytes = 0;
  // One at a time, as the hub does (it never queues a second picture behind one being encoded).
  for (let i = 0; i < n; i++) bytes = (await encode()).length;
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  return { wallMs: wall / n, cpuMs: (cpu.user + cpu.system) / 1000 / n, bytes };
}

/** The MPEG-1 live view's ffmpeg (drivers/camera/liveView.ts, its default 640 px, 25 fps, 1000 kb/s) on `file` for `seconds`: % of one core. */
async function mpeg1Cpu(bin: string, file: string, seconds: number): Promise<number> {
  const args = ["-hide_banner", "-nostats", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", `file:${file}`, "-map", "0:v:0", "-an"];
  args.push("-vf", "scale=640:-2", "-r", "25", "-f", "mpegts", "-codec:v", "mpeg1video", "-b:v", "1000k", "-bf", "0", "pipe:1");
  const child = spawn(bin, args, { stdio: ["pipe", "pipe", "ignore"] });
  child.stdout.resume();
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const c0 = cpuSeconds(child.pid);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    return ((cpuSeconds(child.pid) - c0) / ((Date.now() - t0) / 1000)) * 100;
  } finally {
    await stopChild(child, 2000);
  }
}

export async function consoleBench(args: string[]): Promise<BenchResult[]> {
  const num = (name: string, d: number) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? d);
  const seconds = num("duration", 6);
  const rounds = num("rounds", 2);
  const root = repoRoot();
  const bin = resolveFfmpeg().path;
  const tmp = mkdtempSync(path.join(os.tmpdir(), "cityedge-bench-console-"));
  const figures: Record<string, number | string> = { cores: os.availableParallelism(), seconds_per_measurement: seconds, rounds };
  try {
    const demo = path.join(root, "models/synthetic/demo.mp4");
    const hd = path.join(tmp, "demo-1080p.mp4");
    // The demo junction scaled to 1080p, as a street camera's main stream would be.
    await runFfmpeg(bin, [
      "-i",
      demo,
      "-t",
      "20",
      "-vf",
      "scale=1920:1080",
      "-c:v",
      "libx264",
      "-preset",
      "veryfast",
      "-g",
      "20",
      "-pix_fmt",
      "yuv420p",
      hd,
    ]);
    for (const [name, file] of [
      ["demo_640x360", demo],
      ["h264_1080p", hd],
    ] as const) {
      if (!existsSync(file)) continue;
      const off: number[] = [];
      const on: number[] = [];
      let stillsPerS = 0;
      // Alternating rounds (off, on, on, off, …): the machine's other load falls on both alike.
      for (let r = 0; r < rounds; r++) {
        for (const interval of r % 2 === 0 ? [0, 2] : [2, 0]) {
          const m = await cameraCpu(file, interval, seconds);
          (interval === 0 ? off : on).push(m.cpu);
          if (interval > 0) stillsPerS = m.stills;
        }
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      figures[`${name}_10fps_ffmpeg_cpu_pct_no_stills`] = round(mean(off));
      figures[`${name}_10fps_ffmpeg_cpu_pct_stills_every_2s`] = round(mean(on));
      figures[`${name}_stills_cost_pct_of_a_core`] = round(mean(on) - mean(off), 2);
      figures[`${name}_stills_per_s`] = round(stillsPerS, 2);
      figures[`${name}_mpeg1_live_view_ffmpeg_cpu_pct`] = round(await mpeg1Cpu(bin, file, seconds));
    }
    const picture = path.join(root, "models/stills/street.jpg");
    const frame = await modelFrame(picture);
    const live = await livePictureCost(frame, 200);
    figures["live_picture_416x234_encode_wall_ms"] = round(live.wallMs, 2);
    figures["live_picture_416x234_cpu_ms"] = round(live.cpuMs, 2);
    figures["live_picture_416x234_jpeg_bytes"] = live.bytes;
    // Ten pictures a second of cpuMs each: cpuMs × 10 / 1000 of a core, in percent.
    figures["live_view_at_10fps_cpu_pct_of_a_core"] = round(live.cpuMs, 1);
    figures["live_view_at_10fps_kib_per_s"] = round((live.bytes * 10) / 1024);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return [{ name: "console", figures }];
}
