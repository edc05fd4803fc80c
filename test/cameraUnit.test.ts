import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RateMeter } from "../drivers/camera/rateMeter.js";
import { createSource, filePath } from "../drivers/camera/createSource.js";
import { resolveFfmpeg, ffmpegCaps } from "../drivers/camera/ffmpegBinary.js";
import { LineSplitter, parseStderrLine } from "../drivers/camera/ffmpegLog.js";
import { LatestFrameSlot, type Frame } from "../drivers/camera/frame.js";
import { FifoReader } from "../drivers/camera/fifoReader.js";
import { FrameCutter } from "../drivers/camera/frameCutter.js";
import { FramePool } from "../drivers/camera/framePool.js";
import { FrameInfos } from "../drivers/camera/frameInfos.js";
import { letterboxFilter, letterboxGeometry } from "../drivers/camera/letterbox.js";
import { stopFfmpeg } from "../drivers/camera/stopFfmpeg.js";
import { ConfigError } from "../runtime/config/errors.js";
import { loadConfig } from "../runtime/config/load.js";
import { CAMERA_SCHEMA } from "../runtime/config/sections/cameras.js";
import { Backoff } from "../runtime/supervise/backoff.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "cityedge-camera-unit-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cam = (over: Record<string, unknown>) => CAMERA_SCHEMA.parse({ id: "c1", url: "rtsp://127.0.0.1/x", ...over });
const CAPS = { version: "test", rtspTimeoutOption: "-timeout" as const };

describe("frame FIFO", () => {
  it("delivers every byte a writer puts in, in order, ends when the writer closes, and leaves no file behind", async () => {
    const src = path.join(mkdtempSync(path.join(os.tmpdir(), "cityedge-fifo-")), "data.bin");
    const data = Buffer.alloc(3 * 1024 * 1024 + 7);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 12)) & 255;
    writeFileSync(src, data);
    const got: Buffer[] = [];
    const fifo = FifoReader.create((c) => got.push(Buffer.from(c)))!;
    expect(fifo).toBeDefined();
    expect(existsSync(fifo.path)).toBe(true);
    const closed = new Promise<void>((r) => fifo.socket.once("close", () => r()));
    // A slow start: the writer opens the FIFO a while after the reader is ready.
    const writer = spawn("sh", ["-c", 'sleep 0.3; cat "$1" > "$2"', "sh", src, fifo.path]);
    // Listen for the exit before waiting for the close: on a busy machine the writer can exit first.
    const exited = new Promise((r) => writer.once("exit", r));
    await closed;
    await exited;
    expect(Buffer.concat(got).equals(data)).toBe(true);
    expect(existsSync(fifo.path)).toBe(false);
    rmSync(path.dirname(src), { recursive: true, force: true });
  });

  it("removes the FIFOs of a process that is gone, and nothing else", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-fifo-sweep-"));
    const gone = spawnSync("true").pid; // exited: its pid names no process now
    const fifo = (name: string) => {
      expect(spawnSync("mkfifo", [path.join(dir, name)]).status).toBe(0);
      return path.join(dir, name);
    };
    const stale = fifo(`cityedge-${gone}-3-abc123.fifo`);
    const mine = fifo(`cityedge-${process.pid}-1-def456.fifo`);
    const other = fifo(`someone-${gone}-1-abc.fifo`);
    const plain = path.join(dir, `cityedge-${gone}-4-aaa.fifo`);
    writeFileSync(plain, "not a fifo");
    expect(FifoReader.sweepStale(dir)).toEqual([stale]);
    expect([stale, mine, other, plain].map((f) => existsSync(f))).toEqual([false, true, true, true]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("ends at once when the writer is gone without ever opening it", async () => {
    const fifo = FifoReader.create(() => undefined)!;
    const closed = new Promise<void>((r) => fifo.socket.once("close", () => r()));
    fifo.writerOpened();
    await closed;
    expect(existsSync(fifo.path)).toBe(false);
  });
});

describe("letterbox geometry", () => {
  it("scales 640x352 into 416x416 at top-left, as YOLOX expects", () => {
    expect(letterboxGeometry(640, 352, { width: 416, height: 416, letterbox: "top-left" })).toEqual({
      src_width: 640,
      src_height: 352,
      scale: 0.65,
      pad_x: 0,
      pad_y: 0,
      scaled_width: 416,
      scaled_height: 229,
    });
  });

  it("centers a portrait picture with the padding split (floored) left and right", () => {
    const g = letterboxGeometry(180, 320, { width: 416, height: 416, letterbox: "center" });
    expect([g.scaled_width, g.scaled_height, g.pad_x, g.pad_y]).toEqual([234, 416, 91, 0]);
  });

  it("builds a filter that rate-limits without duplicating, reports frames, scales and pads", () => {
    const f = letterboxFilter({ width: 416, height: 416, pixelFormat: "bgr24", padValue: 114, letterbox: "center" }, 10);
    expect(f).toContain("select='isnan(t)+isnan(prev_selected_t)+gt(floor(t*10),floor(prev_selected_t*10))+lt(t,prev_selected_t-1)'");
    expect(f).toContain(",showinfo=checksum=0,");
    expect(f).toContain("format=bgr24");
    expect(f).toContain("pad=416:416:'floor((ow-iw)/2)':'floor((oh-ih)/2)':color=0x727272");
  });
});

describe("backoff", () => {
  it("starts at about 1 s, doubles to the 30 s cap, and resets", () => {
    const b = new Backoff({ initial_ms: 1000, max_ms: 30_000, random: () => 0.5 });
    expect(Array.from({ length: 7 }, () => b.next())).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    b.reset();
    expect(b.next()).toBe(1000);
  });

  it("jitters each delay within ±20% and never past the cap", () => {
    const lo = new Backoff({ initial_ms: 1000, max_ms: 30_000, random: () => 0 });
    const hi = new Backoff({ initial_ms: 1000, max_ms: 30_000, random: () => 0.999999 });
    expect(lo.next()).toBe(800);
    expect(hi.next()).toBe(1200);
    for (let i = 0; i < 10; i++) hi.next();
    expect(hi.next()).toBe(30_000);
  });

  it("measures rates over a sliding window", () => {
    const r = new RateMeter(5000);
    for (let t = 0; t <= 10_000; t += 1000) r.sample(t, t / 100);
    expect(r.rate()).toBeCloseTo(10, 5);
  });
});

describe("frame cutter", () => {
  it("cuts a pipe into whole frames across any chunking, each frame in a buffer of its own", () => {
    const frames: Buffer[] = [];
    const cutter = new FrameCutter(6, (f) => frames.push(f));
    const chunk = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    cutter.push(chunk.subarray(0, 4));
    cutter.push(chunk.subarray(4, 13));
    expect(frames.map((f) => [...f])).toEqual([
      [0, 1, 2, 3, 4, 5],
      [6, 7, 8, 9, 10, 11],
    ]);
    expect(cutter.pending).toBe(1);
    expect(frames[0]!.buffer).not.toBe(chunk.buffer);
    expect(frames[0]!.byteLength).toBe(frames[0]!.buffer.byteLength);
  });

  it("refuses a frame size that is not a positive whole number", () => {
    expect(() => new FrameCutter(0, () => undefined)).toThrow("frame size must be a positive whole number of bytes, got 0");
  });
});

describe("latest-frame slot", () => {
  it("keeps only the newest frame and counts the ones it dropped and handed out", async () => {
    const slot = new LatestFrameSlot();
    const f = (index: number) => ({ index }) as Frame;
    const woke = slot.next();
    slot.put(f(0));
    await woke;
    slot.put(f(1));
    slot.put(f(2));
    expect(slot.take()?.index).toBe(2);
    expect(slot.take()).toBeUndefined();
    expect([slot.dropped, slot.taken]).toEqual([2, 1]);
  });
});

describe("frame buffer reuse", () => {
  it("gives a dropped frame's buffer back at once, a taken one at release, and never one still in use or still the latest", () => {
    const pool = new FramePool(4);
    const slot = new LatestFrameSlot();
    slot.setRecycler((d) => pool.recycle(d));
    const cutFrames: Frame[] = [];
    const cutter = new FrameCutter(
      4,
      (data) => cutFrames.push({ index: cutFrames.length, data } as Frame),
      () => pool.acquire(),
    );
    const next = (v: number) => {
      cutter.push(Buffer.alloc(4, v));
      const f = cutFrames[cutFrames.length - 1]!;
      slot.put(f);
      return f;
    };
    const a = next(1);
    const b = next(2); // a dropped: its buffer is free again
    expect(pool.stats).toMatchObject({ allocated: 2, free: 1 });
    const c = next(3); // b dropped; c reuses a's buffer
    expect(c.data).toBe(a.data);
    expect(slot.take()).toBe(c);
    const d = next(4); // c is taken (in use): not reused, d gets b's buffer
    expect(d.data).toBe(b.data);
    expect(d.data).not.toBe(c.data);
    expect([...c.data]).toEqual([3, 3, 3, 3]);
    slot.release(c); // c is no longer the latest: back to the pool
    expect(pool.stats.free).toBe(1);
    const taken = slot.take()!;
    slot.release(taken); // still the latest frame (the snapshot command may read it): kept
    expect(pool.stats.free).toBe(1);
    expect(slot.latest).toBe(d);
    const e = next(5); // d is no longer the latest: it goes back now
    expect(pool.stats.free).toBe(1);
    expect([...e.data]).toEqual([5, 5, 5, 5]);
    slot.release(taken); // a second release changes nothing
    expect(pool.stats.free).toBe(1);
    // Two buffers served five frames.
    expect(pool.stats).toMatchObject({ allocated: 2, reused: 3 });
  });

  it("takes back only buffers of its size, and at most its limit", () => {
    const pool = new FramePool(8, 2);
    pool.recycle(Buffer.alloc(7));
    pool.recycle(Buffer.alloc(16).subarray(0, 8));
    expect(pool.stats.free).toBe(0);
    const one = Buffer.alloc(8);
    pool.recycle(one);
    pool.recycle(one);
    pool.recycle(Buffer.alloc(8));
    pool.recycle(Buffer.alloc(8));
    expect(pool.stats.free).toBe(2);
    expect(pool.acquire().length).toBe(8);
  });
});

describe("ffmpeg stderr", () => {
  it("reads showinfo's frame number, stream time and source size", () => {
    const line =
      "[Parsed_showinfo_1 @ 0x5556ead12e40] n:   3 pts:  29970 pts_time:0.333   pos:    52444 fmt:yuv420p sar:0/1 s:640x352 i:P iskey:0 type:P checksum:32110414";
    expect(parseStderrLine(line)).toEqual({ kind: "frame", info: { n: 3, graph: "0x5556ead12e40", pts_ms: 333, src_width: 640, src_height: 352 } });
  });

  it("keeps errors without the password of the url", () => {
    const p = parseStderrLine("rtsp://admin:hunter22@10.0.0.5:554/stream1: Connection refused");
    expect(p).toEqual({ kind: "error", text: "rtsp://admin:[redacted]@10.0.0.5:554/stream1: Connection refused", corrupt: false });
    expect(parseStderrLine("[h264 @ 0x55] error while decoding MB 12 7, bytestream -5")).toMatchObject({ kind: "error", corrupt: true });
    expect(parseStderrLine("Input #0, rtsp, from 'rtsp://admin:hunter22@10.0.0.5/x':")).toEqual({
      kind: "other",
      text: "Input #0, rtsp, from 'rtsp://admin:[redacted]@10.0.0.5/x':",
    });
  });

  it("numbers showinfo reports across filter graphs rebuilt on a resolution change", () => {
    const infos = new FrameInfos();
    const at = (graph: string, n: number, w: number) => infos.add({ graph, n, src_width: w, src_height: 240 });
    expect([at("0xa", 0, 640), at("0xa", 1, 640), at("0xb", 0, 320), at("0xb", 1, 320)]).toEqual([0, 1, 2, 3]);
    // A new graph that reuses the old one's address still starts a new count.
    expect(at("0xb", 0, 160)).toBe(4);
    expect(infos.has(3)).toBe(true);
    expect(infos.take(3)?.src_width).toBe(320);
    expect(infos.take(3)).toBeUndefined();
    expect(infos.last?.src_width).toBe(320);
  });

  it("splits \\r and \\n terminated lines across chunks", () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push("ab");
    s.push("c\rde\nf");
    s.flush();
    expect(lines).toEqual(["abc", "de", "f"]);
  });
});

describe("sources", () => {
  it("picks the source kind from the url and passes its options before -i", () => {
    expect(createSource(cam({ url: "rtsp://u:p@cam.local/s" }), tmp).inputArgs(CAPS)).toEqual([
      "-rtsp_transport",
      "tcp",
      "-timeout",
      "5000000",
      "-fflags",
      "+discardcorrupt",
      "-i",
      "rtsp://u:p@cam.local/s",
    ]);
    expect(
      createSource(cam({ url: "rtsp://cam.local:8554/s", transport: "udp" }), tmp)
        .inputArgs({ ...CAPS, rtspTimeoutOption: "-stimeout" })
        .slice(0, 3),
    ).toEqual(["-rtsp_transport", "udp", "-stimeout"]);
    expect(createSource(cam({ url: "rtsp://cam.local:8554/s" }), tmp).endpoint).toEqual({ host: "cam.local", port: 8554 });
    expect(createSource(cam({ url: "file://media/a.mp4" }), "/etc/cityedge").inputArgs(CAPS)).toEqual([
      "-re",
      "-stream_loop",
      "-1",
      "-fflags",
      "+discardcorrupt+genpts",
      "-i",
      "file:/etc/cityedge/media/a.mp4",
    ]);
    const once = createSource(cam({ url: "file:///v/a.mp4", loop: false, realtime: false }), tmp);
    expect([once.finite, once.inputArgs(CAPS)[0]]).toEqual([true, "-fflags"]);
    expect(createSource(cam({ url: "http://cam/snap.jpg", http_mode: "snapshot", fps: 2 }), tmp).inputArgs(CAPS)).toEqual(
      expect.arrayContaining(["-f", "image2", "-loop", "1", "-framerate", "2", "-i", "http://cam/snap.jpg"]),
    );
    expect(createSource(cam({ url: "https://cam/mjpeg" }), tmp).endpoint).toEqual({ host: "cam", port: 443 });
    expect(createSource(cam({ url: "/dev/video2", v4l2_format: "mjpeg", v4l2_size: "1280x720" }), tmp).inputArgs(CAPS)).toEqual([
      "-f",
      "v4l2",
      "-input_format",
      "mjpeg",
      "-video_size",
      "1280x720",
      "-i",
      "/dev/video2",
    ]);
    expect(filePath("file:///a/b%20c.mp4", "/x")).toBe("/a/b c.mp4");
  });
});

describe("camera config", () => {
  function problems(yaml: string): string[] {
    const file = path.join(tmp, `c${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    try {
      loadConfig(file, {});
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
      throw err;
    }
    return [];
  }

  it("names the line of a malformed url or an unknown scheme, without the password", () => {
    const out = problems(
      [
        "device_id: d1",
        "cameras:",
        "  - id: a",
        "    url: rtmp://user:topsecret@cam/live",
        "  - id: b",
        "    url: rtsp://admin:topsecret@:554/x",
        "  - id: c",
        "    url: camera-7",
        "  - id: d",
        "    url: rtsp://10.0.0.9/ok",
        "    transport: quic",
        "",
      ].join("\n"),
    );
    expect(out).toEqual([
      '4:5 cameras[0].url: unknown scheme "rtmp" (known: rtsp, rtsps, http, https, file, or a /dev/videoN device), got "rtmp://user:[redacted]@cam/live"',
      '6:5 cameras[1].url: is not a valid URL, got "rtsp://admin:[redacted]@:554/x"',
      '8:5 cameras[2].url: must be rtsp://, rtsps://, http(s)://, file:// or /dev/videoN, got "camera-7"',
      '11:5 cameras[3].transport: must be one of "tcp", "udp", got "quic"',
    ]);
    expect(out.join("\n")).not.toContain("topsecret");
  });

  it("checks the live view's frame rate and port", () => {
    const out = problems(["device_id: d1", "http:", "  port: 9200", "live_view:", "  enabled: true", "  port: 9200", "  fps: 15", ""].join("\n"));
    expect(out).toEqual([
      "6:3 live_view.port: port 9200 is also http.port; pick another",
      "7:3 live_view.fps: must be a frame rate MPEG-1 can carry: 24, 25, 30, 50, 60",
    ]);
  });

  it("gives every camera option a default", () => {
    const c = cam({});
    expect(c).toMatchObject({
      fps: 10,
      input_size: [416, 416],
      pixel_format: "rgb24",
      letterbox: "top-left",
      pad_value: 114,
      transport: "tcp",
      stall_timeout_ms: 10_000,
    });
    expect(c.backoff).toEqual({ initial_ms: 1000, max_ms: 30_000, reset_after_ms: 60_000 });
  });
});

describe("ffmpeg binary", () => {
  it("prefers the configured path, then PATH, then the npm package's binary", async () => {
    expect(() => resolveFfmpeg(path.join(tmp, "nope"))).toThrow(`ffmpeg_path "${path.join(tmp, "nope")}" is not an executable file`);
    expect(resolveFfmpeg(undefined, "/usr/bin")).toEqual({ path: "/usr/bin/ffmpeg", origin: "path" });
    const npm = resolveFfmpeg(undefined, tmp);
    expect(npm.origin).toBe("npm");
    expect(npm.path).toContain("@ffmpeg-installer");
    // The 2018 static build names the RTSP socket timeout -stimeout; Debian's 5.1 calls it -timeout.
    expect((await ffmpegCaps(npm.path)).rtspTimeoutOption).toBe("-stimeout");
    expect((await ffmpegCaps("/usr/bin/ffmpeg")).rtspTimeoutOption).toBe("-timeout");
  });
});

describe("stopping ffmpeg", () => {
  it("ends a real ffmpeg with q on stdin", async () => {
    const child = spawn(
      "ffmpeg",
      ["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10", "-f", "null", "-"],
      { stdio: ["pipe", "ignore", "ignore"] },
    );
    await new Promise((r) => child.once("spawn", r));
    await new Promise((r) => setTimeout(r, 300));
    expect(await stopFfmpeg(child)).toBe("q");
    expect(child.exitCode).toBe(0);
  });

  it("escalates to SIGKILL for a process that ignores q and SIGTERM, and reaps it", async () => {
    // An ignored signal stays ignored across exec, so sleep ignores SIGTERM.
    const child = spawn("/bin/sh", ["-c", "trap '' TERM; exec sleep 600"], { stdio: ["pipe", "ignore", "ignore"] });
    await new Promise((r) => child.once("spawn", r));
    await new Promise((r) => setTimeout(r, 100));
    expect(await stopFfmpeg(child, { quitMs: 200, termMs: 300 })).toBe("SIGKILL");
    expect(child.signalCode).toBe("SIGKILL");
  });
});
