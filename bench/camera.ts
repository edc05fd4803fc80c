import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { createCamera, resolveFfmpeg, type Camera } from "../drivers/camera/index.js";
import { CAMERA_SCHEMA } from "../runtime/config/sections/cameras.js";
import type { BenchResult } from "./index.js";
import { cpuSeconds, readyPort, repoRoot, round, rssMiB, runFfmpeg, stopChild, sharedDataDir } from "./benchProcess.js";

/**
 * Camera ingest figures: frames per second and CPU per camera (the real 640x352 clip, and a
 * 1080p H.264 stream scaled to 416x416), how many 1080p cameras this machine ingests at 10 fps,
 * and resident memory per camera. `--duration=S` sets each measurement's length (default 8).
 */

interface Measure {
  fps: number;
  /** ffmpeg CPU, % of one core. */
  ffmpeg_cpu: number;
  /** This process's CPU (frame cutting, slot), % of one core, for all cameras together. */
  node_cpu: number;
  ffmpeg_rss_mib: number;
}

/** Runs `n` cameras on `url` for `seconds` (after their first frame) and measures them. */
async function measure(url: string, n: number, seconds: number, over: Record<string, unknown>): Promise<Measure[]> {
  const log = pino({ level: "silent" });
  const cams: Camera[] = [];
  for (let i = 0; i < n; i++) cams.push(createCamera(CAMERA_SCHEMA.parse({ id: `bench-${i}`, url, ...over }), { log, baseDir: process.cwd() }));
  try {
    await Promise.all(cams.map((c) => c.start()));
    await Promise.all(cams.map((c) => c.slot.next()));
    // Frames buffered while ffmpeg probed the stream arrive in a burst: measure after it.
    await new Promise((r) => setTimeout(r, 2000));
    const start = cams.map((c) => ({ frames: c.health().frames_in, cpu: cpuSeconds(c.pid), pid: c.pid }));
    const t0 = process.hrtime.bigint();
    const n0 = process.cpuUsage();
    let rss = 0;
    // Consumers that take every frame, as a fast detector would.
    const stop = { done: false };
    const drains = cams.map(async (c) => {
      while (!stop.done) {
        await Promise.race([c.slot.next(), new Promise((r) => setTimeout(r, 200))]);
        c.slot.take();
      }
    });
    await new Promise((r) => setTimeout(r, (seconds * 1000) / 2));
    rss = cams.reduce((a, c) => a + rssMiB(c.pid), 0) / n;
    await new Promise((r) => setTimeout(r, (seconds * 1000) / 2));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const nodeCpu = process.cpuUsage(n0);
    stop.done = true;
    await Promise.all(drains);
    return cams.map((c, i) => ({
      fps: (c.health().frames_in - start[i]!.frames) / secs,
      ffmpeg_cpu: c.pid === start[i]!.pid ? ((cpuSeconds(c.pid) - start[i]!.cpu) / secs) * 100 : NaN,
      node_cpu: ((nodeCpu.user + nodeCpu.system) / 1e6 / secs) * 100,
      ffmpeg_rss_mib: rss,
    }));
  } finally {
    await Promise.all(cams.map((c) => c.stop()));
  }
}

/** GStreamer's RTSP server (the test fixture) serving `clip`; undefined when python3-gi or the script is missing. */
async function rtspServer(root: string, clip: string): Promise<{ url: string; child: ChildProcess } | undefined> {
  const script = path.join(root, "test/fixtures/camera/rtspServer.py");
  if (!existsSync(script) || !existsSync("/usr/bin/python3")) return undefined;
  const child = spawn("/usr/bin/python3", [script, "--port", "0", "--clip", clip], { stdio: ["ignore", "pipe", "ignore"] });
  const port = await readyPort(child, 20_000).catch(() => undefined);
  if (port === undefined) {
    await stopChild(child, 2000);
    return undefined;
  }
  return { url: `rtsp://127.0.0.1:${port}/cam`, child };
}

export async function cameraBench(args: string[]): Promise<BenchResult[]> {
  const secondsArg = args.find((a) => a.startsWith("--duration="));
  const seconds = secondsArg ? Number(secondsArg.slice("--duration=".length)) : 8;
  const root = repoRoot();
  const data = sharedDataDir(root);
  const clip = path.join(data, "video/street-traffic-640x352.mp4");
  const bin = resolveFfmpeg();
  const tmp = mkdtempSync(path.join(os.tmpdir(), "cityedge-bench-camera-"));
  const figures: Record<string, number | string> = { ffmpeg: bin.path, cores: os.availableParallelism(), seconds_per_measurement: seconds };
  const servers: ChildProcess[] = [];
  try {
    const hd = path.join(tmp, "1080p.mp4");
    await runFfmpeg(bin.path, [
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=1920x1080:rate=25:d=20",
      "-c:v",
      "libx264",
      "-preset",
      "veryfast",
      "-g",
      "50",
      "-pix_fmt",
      "yuv420p",
      hd,
    ]);
    const hdFile = `file://${hd}`;
    // Real-time figures come over RTSP from GStreamer's server when it is installed (as from a
    // camera), else from the file paced in real time.
    const viaRtsp = async (file: string): Promise<string> => {
      const srv = await rtspServer(root, file);
      if (!srv) return `file://${file}`;
      servers.push(srv.child);
      return srv.url;
    };

    if (existsSync(clip)) {
      const [max] = await measure(`file://${clip}`, 1, seconds, { fps: 60, realtime: false, loop: true });
      const clipLive = await viaRtsp(clip);
      figures["clip_640x352_10fps_source"] = clipLive.split(":")[0]!;
      figures["clip_640x352_max_fps"] = round(max!.fps);
      figures["clip_640x352_max_ffmpeg_cpu_pct"] = round(max!.ffmpeg_cpu);
      figures["clip_640x352_max_node_cpu_pct"] = round(max!.node_cpu);
      const [rt] = await measure(clipLive, 1, seconds, { fps: 10 });
      figures["clip_640x352_10fps_fps"] = round(rt!.fps);
      figures["clip_640x352_10fps_ffmpeg_cpu_pct"] = round(rt!.ffmpeg_cpu);
      figures["clip_640x352_10fps_node_cpu_pct"] = round(rt!.node_cpu);
      figures["clip_640x352_ffmpeg_rss_mib"] = round(rt!.ffmpeg_rss_mib);
    } else {
      figures["clip_640x352"] = `skipped: ${clip} not found (CITYEDGE_SHARED_DATA)`;
    }

    const [hdMax] = await measure(hdFile, 1, seconds, { fps: 60, realtime: false, loop: true });
    const hdUrl = await viaRtsp(hd);
    figures["h264_1080p_10fps_source"] = hdUrl.split(":")[0]!;
    figures["h264_1080p_to_416_max_fps"] = round(hdMax!.fps);
    figures["h264_1080p_to_416_max_ffmpeg_cpu_pct"] = round(hdMax!.ffmpeg_cpu);
    figures["h264_1080p_to_416_max_node_cpu_pct"] = round(hdMax!.node_cpu);
    const [hd10] = await measure(hdUrl, 1, seconds, { fps: 10 });
    figures["h264_1080p_to_416_10fps_fps"] = round(hd10!.fps);
    figures["h264_1080p_to_416_10fps_ffmpeg_cpu_pct"] = round(hd10!.ffmpeg_cpu);
    figures["h264_1080p_to_416_10fps_node_cpu_pct"] = round(hd10!.node_cpu);
    figures["h264_1080p_ffmpeg_rss_mib"] = round(hd10!.ffmpeg_rss_mib);
    figures["node_frame_memory_per_camera_mib"] = round((2 * 416 * 416 * 3) / 2 ** 20, 2);

    // Capacity: 1080p 25 fps cameras (decoded in full, 10 fps kept); a count holds when every
    // camera gets >= 9.5 fps. Doubling until one fails, then one step at a time in between.
    const estimate = Math.max(1, Math.floor((os.availableParallelism() * 100) / Math.max(1, hd10!.ffmpeg_cpu)));
    const attempt = async (n: number): Promise<boolean> => {
      const m = await measure(hdUrl, n, seconds, { fps: 10 });
      const minFps = Math.min(...m.map((x) => x.fps));
      figures[`cameras_1080p_at_10fps_n${n}_min_fps`] = round(minFps);
      figures[`cameras_1080p_at_10fps_n${n}_total_ffmpeg_cpu_pct`] = round(m.reduce((a, x) => a + x.ffmpeg_cpu, 0));
      return minFps >= 9.5;
    };
    let held = 0;
    let failed = 0;
    for (let n = 1; n <= 32; n *= 2) {
      if (await attempt(n)) held = n;
      else {
        failed = n;
        break;
      }
    }
    for (let n = held + 1; failed > 0 && n < failed; n++) {
      if (await attempt(n)) held = n;
      else break;
    }
    figures["cameras_1080p_at_10fps_estimate_from_cpu"] = estimate;
    figures["cameras_1080p_at_10fps_sustained"] = held;
  } finally {
    await Promise.all(servers.map((c) => stopChild(c, 2000)));
    rmSync(tmp, { recursive: true, force: true });
  }
  return [{ name: "camera", figures }];
}
