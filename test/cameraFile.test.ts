import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildCameras, createCamera, type Camera, type Frame } from "../drivers/camera/index.js";
import { loadConfig } from "../runtime/config/load.js";
import type { PartContext } from "../runtime/part.js";
import { CAMERA_SCHEMA } from "../runtime/config/sections/cameras.js";
import { Metrics } from "../runtime/metrics.js";
import { ffmpeg, ffmpegChildren, memoryLogger, pixel, waitFor, lingeringZombies, takeFrames } from "./helpers/camera.js";
import { sharedFile } from "./helpers/sharedData.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "cityedge-camera-file-"));
const CLIP = sharedFile("video/street-traffic-640x352.mp4");
const running: Camera[] = [];
const RED = [250, 10, 20];
const GREEN = [20, 240, 30];
const BLUE = [30, 40, 230];
const WHITE = [255, 255, 255];

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function start(over: Record<string, unknown>, spec: Record<string, unknown> = {}): Camera {
  const cfg = CAMERA_SCHEMA.parse({ id: "cam", fps: 10, ...over });
  const cam = createCamera(cfg, { log: memoryLogger().log, baseDir: tmp, ...spec });
  running.push(cam);
  return cam;
}

const frames = takeFrames;

const hex = (c: number[]) => `0x${c.map((v) => v.toString(16).padStart(2, "0")).join("")}`;

/** A lossless (PNG-in-Matroska) clip of four flat quadrants, so decoded pixels are exact. */
async function quadrants(file: string, w: number, h: number): Promise<void> {
  const q = `${w / 2}x${h / 2}`;
  await ffmpeg([
    // format=rgb24 right at the source: the colours never pass through YUV.
    ...[RED, GREEN, BLUE, WHITE].flatMap((c) => ["-f", "lavfi", "-i", `color=c=${hex(c)}:s=${q}:r=25:d=2,format=rgb24`]),
    "-filter_complex",
    "[0][1]hstack[top];[2][3]hstack[bottom];[top][bottom]vstack,format=rgb24",
    "-c:v",
    "png",
    file,
  ]);
}

describe("camera on a generated test pattern (pixel-exact)", () => {
  const wide = path.join(tmp, "wide.mkv");
  const tall = path.join(tmp, "tall.mkv");
  beforeAll(async () => {
    await quadrants(wide, 320, 180);
    await quadrants(tall, 180, 320);
  });

  it("scales a 320x180 picture to 416x234 at the top-left of a 416x416 frame padded with 114", async () => {
    const cam = start({ url: `file://${wide}`, realtime: false });
    await cam.start();
    const [f] = await frames(cam, 1);
    expect(f!.letterbox).toEqual({ src_width: 320, src_height: 180, scale: 1.3, pad_x: 0, pad_y: 0 });
    expect([f!.width, f!.height, f!.format, f!.data.length]).toEqual([416, 416, "rgb24", 416 * 416 * 3]);
    const d = f!.data;
    // Inside each scaled quadrant (away from the blended seams): the exact source colour.
    expect(pixel(d, 416, 50, 50)).toEqual(RED);
    expect(pixel(d, 416, 360, 50)).toEqual(GREEN);
    expect(pixel(d, 416, 50, 180)).toEqual(BLUE);
    expect(pixel(d, 416, 360, 180)).toEqual(WHITE);
    // The last picture row is picture, the next is padding, and all the padding is exactly 114.
    expect(pixel(d, 416, 50, 233)).toEqual(BLUE);
    expect(d.subarray(234 * 416 * 3).every((v) => v === 114)).toBe(true);
  });

  it("centers the picture and writes BGR when asked", async () => {
    const cam = start({ url: `file://${tall}`, realtime: false, letterbox: "center", pixel_format: "bgr24", pad_value: 0 });
    await cam.start();
    const [f] = await frames(cam, 1);
    expect(f!.letterbox).toEqual({ src_width: 180, src_height: 320, scale: 1.3, pad_x: 91, pad_y: 0 });
    const d = f!.data;
    expect(pixel(d, 416, 91 + 20, 20)).toEqual([...RED].reverse());
    expect(pixel(d, 416, 91 + 200, 400)).toEqual([...WHITE].reverse());
    expect(pixel(d, 416, 90, 200)).toEqual([0, 0, 0]);
    expect(pixel(d, 416, 91 + 234, 200)).toEqual([0, 0, 0]);
    expect(pixel(d, 416, 91 + 233, 10)).toEqual([...GREEN].reverse());
  });

  it("takes the model's frame size over the camera's input_size", async () => {
    const cam = start({ url: `file://${wide}`, realtime: false, input_size: [320, 320] }, { width: 640, height: 640 });
    await cam.start();
    const [f] = await frames(cam, 1);
    expect([f!.width, f!.height, f!.data.length, f!.letterbox.scale]).toEqual([640, 640, 640 * 640 * 3, 2]);
  });

  it("can be stopped and started again (restart_pipeline), leaving one ffmpeg", async () => {
    const cam = start({ url: `file://${wide}` });
    await cam.start();
    await frames(cam, 1);
    const first = cam.pid;
    await cam.stop();
    expect(cam.health()).toMatchObject({ state: "stopped" });
    expect(ffmpegChildren()).toEqual([]);
    await cam.start();
    await frames(cam, 1);
    expect(cam.pid).not.toBe(first);
    expect(ffmpegChildren().length).toBe(1);
  });

  it("with read_as_consumed, reads a file only as fast as frames are taken, and waiting is no stall", async () => {
    const cam = start({ url: `file://${wide}`, realtime: false, loop: true, fps: 25, read_as_consumed: true, stall_timeout_ms: 1000 });
    await cam.start();
    await cam.slot.next();
    // Nobody takes the frame for 2.5 stall timeouts: ffmpeg is held back on the full pipe (a
    // frame already in flight may still land), and the watchdog does not restart it.
    await new Promise((r) => setTimeout(r, 2500));
    expect(cam.health().frames_in).toBeLessThanOrEqual(3);
    expect(cam.health().restarts).toBe(0);
    // Taking frames reads on: 30 more arrive, and at most the one in flight was ever dropped.
    expect(await frames(cam, 30)).toHaveLength(30);
    expect(cam.slot.dropped).toBeLessThanOrEqual(1);
    expect(cam.health().restarts).toBe(0);
  });

  it("limits the rate to fps in stream time, stamping each frame with its timestamp", async () => {
    const cam = start({ url: `file://${wide}`, realtime: false, loop: false, fps: 5 });
    await cam.start();
    await waitFor(() => cam.state === "stopped", "the end of the clip");
    // 2 s of 25 fps video at 5 fps: exactly 10 frames, none duplicated; the last one is at 1.8 s.
    expect(cam.health().frames_in).toBe(10);
    expect(cam.slot.peek()?.pts_ms).toBe(1800);
  });
});

describe("cameras from a config file", () => {
  it("builds the enabled cameras, keyed by id, with file:// paths relative to the config file", async () => {
    const dir = mkdtempSync(path.join(tmp, "cfg-"));
    await quadrants(path.join(dir, "clip.mkv"), 320, 180);
    const file = path.join(dir, "site.yaml");
    writeFileSync(
      file,
      [
        "device_id: d1",
        "cameras:",
        "  - id: north",
        "    url: file://clip.mkv",
        "    input_size: [320, 320]",
        "  - id: south",
        "    url: rtsp://10.0.0.2/x",
        "    enabled: false",
        "",
      ].join("\n"),
    );
    const loaded = loadConfig(file, {});
    const metrics = new Metrics();
    const cams = buildCameras({ loaded, config: loaded.config, log: memoryLogger().log, metrics } as unknown as PartContext);
    expect([...cams.keys()]).toEqual(["north"]);
    const north = cams.get("north")!;
    running.push(north);
    expect(north.name).toBe("camera:north");
    await north.start();
    const [f] = await frames(north, 1);
    expect([f!.width, f!.height, f!.camera_id]).toEqual([320, 320, "north"]);
    expect(await metrics.render()).toMatch(/cityedge_camera_frames_total\{camera="north"\} \d+/);
  });
});

describe.skipIf(!CLIP)("camera on the real street clip", () => {
  it("plays a file in real time with stream timestamps 1/fps apart", async () => {
    const cam = start({ url: `file://${CLIP}`, fps: 10 });
    await cam.start();
    const got = await frames(cam, 12);
    const pts = got.map((f) => f.pts_ms!);
    expect(pts.every((p) => typeof p === "number")).toBe(true);
    const gaps = pts.slice(1).map((p, i) => p - pts[i]!);
    // 24 fps source, one frame per 100 ms slot: gaps of 83 to 125 ms.
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(40);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(170);
    expect(got[11]!.arrival_ms).toBeGreaterThan(got[0]!.arrival_ms);
    expect(got.map((f) => f.index)).toEqual([...got.keys()].map((i) => got[0]!.index + i));
    expect(cam.health()).toMatchObject({ state: "running", stream: "streaming", source: "file", src_size: "640x352" });
    expect(ffmpegChildren().length).toBe(1);
  });

  it("restarts an ffmpeg that crashes (SIGKILL), five times, leaving no zombie and one ffmpeg", async () => {
    const cam = start({ url: `file://${CLIP}`, backoff: { initial_ms: 100, max_ms: 400 } });
    await cam.start();
    await frames(cam, 1);
    for (let i = 1; i <= 5; i++) {
      const pid = cam.pid!;
      process.kill(pid, "SIGKILL");
      await waitFor(() => cam.pid !== undefined && cam.pid !== pid && cam.state === "streaming", `stream back after crash ${i}`);
      expect(cam.health().restarts).toBe(i);
      expect(String(cam.health().last_error)).toContain("SIGKILL");
    }
    expect(await lingeringZombies()).toEqual([]);
    expect(ffmpegChildren().length).toBe(1);
  });

  it("skips and counts corrupt data and keeps going to the end", async () => {
    const ts = path.join(tmp, "corrupt.ts");
    await ffmpeg(["-i", CLIP!, "-c", "copy", "-f", "mpegts", ts]);
    const size = statSync(ts).size;
    const fd = openSync(ts, "r+");
    // Garbage over 30 runs of 4 KiB through the middle of the clip.
    for (let i = 1; i <= 30; i++) writeSync(fd, Buffer.alloc(4096, i * 37), 0, 4096, Math.floor((size * i) / 40));
    closeSync(fd);
    const cam = start({ url: `file://${ts}`, realtime: false, loop: false, fps: 10 });
    await cam.start();
    await waitFor(() => cam.state === "stopped", "the end of the corrupted clip", 120_000);
    const h = cam.health();
    expect(h.corrupt).toBeGreaterThan(0);
    // 37.7 s at 10 fps is ~377 frames; damaged ones are skipped, the rest still arrive.
    expect(h.frames_in).toBeGreaterThan(250);
    expect(h.restarts).toBe(0);
  });

  it("keeps working through a resolution change mid-stream", async () => {
    const a = path.join(tmp, "a.ts");
    const b = path.join(tmp, "b.ts");
    await ffmpeg(["-i", CLIP!, "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts", a]);
    await ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24:d=2", "-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts", b]);
    const both = path.join(tmp, "both.ts");
    writeFileSync(both, Buffer.concat([readFileSync(a), readFileSync(b)]));
    const cam = start({ url: `file://${both}`, realtime: false, loop: false, fps: 10 });
    await cam.start();
    const seen: Frame[] = [];
    while (cam.state !== "stopped" || cam.slot.peek()) {
      await Promise.race([cam.slot.next(), new Promise((r) => setTimeout(r, 200))]);
      const f = cam.slot.take();
      if (f) seen.push(f);
    }
    const sizes = [...new Set(seen.map((f) => `${f.letterbox.src_width}x${f.letterbox.src_height}`))];
    expect(sizes).toEqual(["640x352", "320x240"]);
    const last = seen.at(-1)!;
    expect(last.data.length).toBe(416 * 416 * 3);
    expect(last.letterbox.scale).toBeCloseTo(1.3, 9);
    // 320x240 scaled by 1.3 is 416x312: row 311 is picture, row 312 onwards padding.
    expect(last.data.subarray(312 * 416 * 3).every((v) => v === 114)).toBe(true);
    expect(last.data.subarray(311 * 416 * 3, 312 * 416 * 3).some((v) => v !== 114)).toBe(true);
  });
});

describe("camera sources that are missing or over HTTP", () => {
  it("reports a missing file as a reconnecting camera with the error, and retries", async () => {
    const cam = start({ url: "file://does/not/exist.mp4", backoff: { initial_ms: 100, max_ms: 200 } });
    await cam.start();
    await waitFor(() => cam.health().restarts >= 2, "two retries");
    const h = cam.health();
    expect(h.stream).toBe("reconnecting");
    expect(h.state).toBe("degraded");
    expect(String(h.error)).toContain("No such file or directory");
  });

  it("reports an unreachable RTSP camera as reconnecting, never throwing", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const cam = start({ url: `rtsp://viewer:pw-never-logged@127.0.0.1:${port}/live`, backoff: { initial_ms: 100, max_ms: 200 } });
    await cam.start();
    await waitFor(() => cam.health().restarts >= 1, "a retry");
    const h = cam.health();
    expect(h).toMatchObject({ state: "degraded", stream: "reconnecting", frames_in: 0 });
    expect(String(h.error)).toContain("Connection refused");
    expect(JSON.stringify(h)).not.toContain("pw-never-logged");
  });

  it("reports a decoder ffmpeg does not have as failed, and counts restarts in the metrics", async () => {
    const metrics = new Metrics();
    const cam = start(
      { url: `file://${CLIP ?? "/nonexistent.mp4"}`, decoder: "h264_nonexistent", backoff: { initial_ms: 100, max_ms: 200 } },
      { metrics },
    );
    await cam.start();
    await waitFor(() => cam.health().restarts >= 2, "two retries");
    expect(cam.health()).toMatchObject({ state: "failed", stream: "failed" });
    expect(String(cam.health().error)).toContain("Unknown decoder 'h264_nonexistent'");
    expect(await metrics.render()).toMatch(/cityedge_camera_restarts_total\{camera="cam"\} [2-9]/);
  });

  describe("http", () => {
    let server: http.Server;
    let base = "";
    let snapshots = 0;
    beforeAll(async () => {
      const jpg = path.join(tmp, "snap.jpg");
      await ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:d=1", "-frames:v", "1", jpg]);
      const jpeg = readFileSync(jpg);
      server = http.createServer((req, res) => {
        if (req.url === "/snap.jpg") {
          snapshots++;
          res.writeHead(200, { "content-type": "image/jpeg", "content-length": jpeg.length });
          res.end(jpeg);
        } else if (req.url === "/mjpeg") {
          res.writeHead(200, { "content-type": "multipart/x-mixed-replace; boundary=frame" });
          const send = () =>
            res.write(
              Buffer.concat([
                Buffer.from(`--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`),
                jpeg,
                Buffer.from("\r\n"),
              ]),
            );
          send();
          const timer = setInterval(send, 100);
          res.on("close", () => clearInterval(timer));
        } else {
          res.writeHead(404).end();
        }
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    it("reads an MJPEG stream", async () => {
      const cam = start({ url: `${base}/mjpeg`, fps: 5 });
      await cam.start();
      const got = await frames(cam, 3);
      expect(got[2]!.letterbox).toMatchObject({ src_width: 320, src_height: 240 });
      expect(cam.health().source).toBe("http");
    });

    it("fetches a snapshot url again for every frame", async () => {
      const before = snapshots;
      const cam = start({ url: `${base}/snap.jpg`, http_mode: "snapshot", fps: 4 });
      await cam.start();
      await frames(cam, 3);
      expect(snapshots - before).toBeGreaterThanOrEqual(3);
    });
  });
});
