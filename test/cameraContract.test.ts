/**
 * The camera source contract, run against every kind in drivers/camera/sources.ts: its config
 * (a bare url of its own takes it, its options are its own, wrong ones are named at their line),
 * its ffmpeg input, and a real camera of that kind streaming frames through the one Camera part
 * and stopping cleanly. Each kind has a real counterpart here: the GStreamer RTSP server, an
 * HTTP server, a generated clip; a V4L2 device when the machine has one.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCamera, type Camera } from "../drivers/camera/index.js";
import { createSource } from "../drivers/camera/createSource.js";
import { SOURCE_KINDS, type SourceKindName } from "../drivers/camera/sources.js";
import { ConfigError } from "../runtime/config/errors.js";
import { loadConfig } from "../runtime/config/load.js";
import { CAMERA_SCHEMA } from "../runtime/config/sections/cameras.js";
import { ffmpeg, ffmpegChildren, memoryLogger, RtspServer, takeFrames, waitFor } from "./helpers/camera.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "cityedge-camera-contract-"));
const CAPS = { version: "test", rtspTimeoutOption: "-timeout" as const };
const V4L2_DEVICE = ["/dev/video0", "/dev/video1"].find((d) => existsSync(d));

/** Per kind: a url of its own for the config checks, and how to get a real one streaming (undefined: none on this machine). */
interface KindCase {
  url: string;
  /** An option of the kind with a non-default value (for the "belongs to" check on other kinds). */
  option: [string, unknown];
  live?: () => Promise<Record<string, unknown>>;
}

let rtsp: RtspServer | undefined;
let web: http.Server | undefined;
let clip = "";

const CASES: Record<SourceKindName, KindCase> = {
  rtsp: {
    url: "rtsp://user:pw@cam.local:8554/s",
    option: ["transport", "udp"],
    live: async () => {
      rtsp = new RtspServer({ pattern: "320x240@25" });
      await rtsp.start();
      return { url: rtsp.url() };
    },
  },
  http: {
    url: "http://cam.local/video.mjpg",
    option: ["http_mode", "snapshot"],
    live: async () => {
      const jpg = path.join(tmp, "snap.jpg");
      await ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:d=1", "-frames:v", "1", jpg]);
      const jpeg = readFileSync(jpg);
      web = http.createServer((_req, res) => {
        res.writeHead(200, { "content-type": "image/jpeg", "content-length": jpeg.length });
        res.end(jpeg);
      });
      await new Promise<void>((r) => web!.listen(0, "127.0.0.1", r));
      return { url: `http://127.0.0.1:${(web.address() as AddressInfo).port}/snap.jpg`, http_mode: "snapshot" };
    },
  },
  file: {
    url: "file://media/clip.mp4",
    option: ["realtime", false],
    live: async () => {
      clip = path.join(tmp, "clip.mp4");
      await ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:d=4", "-pix_fmt", "yuv420p", clip]);
      return { url: `file://${clip}` };
    },
  },
  v4l2: {
    url: "/dev/video3",
    option: ["v4l2_size", "640x480"],
    ...(V4L2_DEVICE ? { live: async () => ({ url: V4L2_DEVICE }) } : {}),
  },
};

afterAll(async () => {
  await rtsp?.kill();
  if (web) {
    web.closeAllConnections();
    await new Promise((r) => web!.close(r));
  }
  rmSync(tmp, { recursive: true, force: true });
});

function problems(cameras: Record<string, unknown>[]): string[] {
  const yaml = [
    "device_id: d1",
    "cameras:",
    ...cameras.flatMap((c) => Object.entries(c).map(([k, v], i) => `${i === 0 ? "  - " : "    "}${k}: ${JSON.stringify(v)}`)),
  ];
  const file = path.join(tmp, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `${yaml.join("\n")}\n`);
  try {
    loadConfig(file, {});
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
    throw err;
  }
}

it("every registered kind has a case in this suite", () => {
  expect(Object.keys(CASES).sort()).toEqual(SOURCE_KINDS.map((k) => k.kind).sort());
});

describe.each(SOURCE_KINDS.map((k) => [k.kind, k] as const))("camera source %s", (name) => {
  const c = CASES[name];

  it("is the kind a bare url of its own takes, and no other kind claims that url", () => {
    expect(SOURCE_KINDS.filter((k) => k.claims(c.url)).map((k) => k.kind)).toEqual([name]);
    const cfg = CAMERA_SCHEMA.parse({ id: "cam-1", url: c.url });
    expect(cfg.source).toBe(name);
    expect(CAMERA_SCHEMA.parse({ id: "cam-1", source: name, url: c.url })).toEqual(cfg);
  });

  it("takes its own options, and each is refused on every other kind at its line, naming whose it is", () => {
    const [key, value] = c.option;
    expect(CAMERA_SCHEMA.parse({ id: "cam-1", url: c.url, [key]: value })).toMatchObject({ [key]: value });
    for (const other of SOURCE_KINDS.filter((k) => k.kind !== name)) {
      expect(problems([{ id: "cam-1", url: CASES[other.kind].url, [key]: value }])).toEqual([
        `5:5 cameras[0].${key}: unknown key "${key}" for source "${other.kind}" (it is an option of source "${name}")`,
      ]);
    }
  });

  it("gives ffmpeg an input that ends with -i and its url, and says what it is (kind, finite, backpressure, endpoint)", () => {
    const source = createSource(CAMERA_SCHEMA.parse({ id: "cam-1", url: c.url }), tmp);
    expect(source.kind).toBe(name);
    const args = source.inputArgs(CAPS);
    expect(args[args.length - 2]).toBe("-i");
    expect(args[args.length - 1]).toContain(name === "file" ? path.resolve(tmp, "media/clip.mp4") : c.url);
    expect(typeof source.finite).toBe("boolean");
    expect(typeof source.readsAsConsumed).toBe("boolean");
    if (source.endpoint) {
      expect(source.endpoint.host).toBe("cam.local");
      expect(source.endpoint.port).toBeGreaterThan(0);
    }
  });

  describe.skipIf(!c.live)(`a real ${name} camera${c.live ? "" : " (skipped: no such device on this machine)"}`, { timeout: 90_000 }, () => {
    let cam: Camera;
    beforeAll(async () => {
      const live = await c.live!();
      cam = createCamera(CAMERA_SCHEMA.parse({ id: `live-${name}`, fps: 5, ...live }), {
        log: memoryLogger().log,
        baseDir: tmp,
        width: 160,
        height: 160,
      });
    });

    it("streams frames of the size asked for, in order, through one ffmpeg, reports its source, and stops without leaving ffmpeg", async () => {
      const before = ffmpegChildren().length;
      await cam.start();
      const frames = await takeFrames(cam, 3);
      for (const f of frames) expect([f.camera_id, f.width, f.height, f.data.length]).toEqual([`live-${name}`, 160, 160, 160 * 160 * 3]);
      expect(frames[2]!.index).toBeGreaterThan(frames[0]!.index);
      expect(frames[0]!.letterbox).toMatchObject({ src_width: 320, src_height: 240 });
      expect(cam.health()).toMatchObject({ state: "running", stream: "streaming", source: name });
      expect(ffmpegChildren().length).toBe(before + 1);
      await cam.stop();
      await waitFor(() => ffmpegChildren().length === before, "ffmpeg gone after stop()");
      expect(cam.health().stream).toBe("stopped");
    });
  });
});

describe("camera source config", () => {
  it("names the line of a url that is not its source's, a camera without a url, and an unknown source", () => {
    expect(
      problems([
        { id: "a", source: "rtsp", url: "http://user:secret@cam/x" },
        { id: "b", fps: 5 },
        { id: "c", source: "rtmp", url: "rtmp://cam/live" },
      ]),
    ).toEqual([
      '5:5 cameras[0].url: must be rtsp:// or rtsps://…, got "http://user:[redacted]@cam/x"',
      "6:5 cameras[1].url: is required (where frames come from)",
      '9:5 cameras[2].source: must be one of "rtsp", "http", "file", "v4l2", got "rtmp"',
    ]);
  });
});
