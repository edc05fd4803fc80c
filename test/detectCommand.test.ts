import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseLine } from "../runtime/cli/detect.js";
import { RtspServer } from "./helpers/camera.js";
import { runCli } from "./helpers/cli.js";
import { REPO_ROOT, sharedDataDir } from "./helpers/sharedData.js";

const data = sharedDataDir();
const MANIFEST = path.join(REPO_ROOT, "models/yolox_nano/manifest.json");

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-detectcmd-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("cityedge detect: the command line", () => {
  it("reads --line as x1,y1,x2,y2[,id] in 0..1 and says what is wrong", () => {
    expect(parseLine("0.25,0.55,1,0.55,road", 0)).toEqual({ id: "road", from: [0.25, 0.55], to: [1, 0.55] });
    expect(parseLine("0,0.5,1,0.5", 1)).toEqual({ id: "line2", from: [0, 0.5], to: [1, 0.5] });
    expect(() => parseLine("0,0.5,1.5,0.5", 0)).toThrow('--line "0,0.5,1.5,0.5": expected x1,y1,x2,y2[,id] with each coordinate 0..1 of the picture');
    expect(() => parseLine("0,0.5,1", 0)).toThrow("expected x1,y1,x2,y2[,id]");
  });

  it("refuses a bad command line with exit 64 and the reason", async () => {
    const noModel = await runCli(["detect", "x.jpg"]);
    expect(noModel.code).toBe(64);
    expect(noModel.stderr).toContain("cityedge detect: missing --model");
    const onnx = await runCli(["detect", "--model", "yolov8n.onnx", "x.jpg"]);
    expect(onnx.code).toBe(64);
    expect(onnx.stderr).toContain(
      '--model "yolov8n.onnx" is an ONNX file: add it first (cityedge models add yolov8n.onnx), then pass its id or manifest',
    );
    const unknown = await runCli(["detect", "--model", "no-such-model", "x.jpg"]);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain('--model "no-such-model": not a manifest file, and no models/no-such-model/manifest.json here or in');
  });
});

describe.skipIf(!data)("cityedge detect on real inputs with YOLOX-Nano", () => {
  it("a picture: the London bus photo's 3 buses and 4 people, as JSON, and the picture with its boxes", async () => {
    const out = path.join(dir, "bus.png");
    const photo = path.join(data!, "images/000000001584.jpg");
    const r = await runCli(["detect", "--model", MANIFEST, photo, "--providers", "cpu", "--json", "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      v: number;
      kind: string;
      width: number;
      height: number;
      provider: string;
      objects: { label: string; box: number[]; box_px: number[] }[];
    };
    expect(j).toMatchObject({ v: 1, kind: "image", model: "yolox_nano", provider: "cpu", width: 612, height: 612 });
    expect(j.objects.filter((o) => o.label === "bus")).toHaveLength(3);
    expect(j.objects.filter((o) => o.label === "person")).toHaveLength(4);
    const big = j.objects[0]!;
    expect(big.box_px[0]).toBeCloseTo(big.box[0]! * 612, 0);
    const meta = await sharp(out).metadata();
    expect([meta.width, meta.height]).toEqual([612, 612]);
  }, 60_000);

  it("a camera URL: an RTSP stream for a few seconds, counted, with its frame rate", async () => {
    const rtsp = new RtspServer({ clip: path.join(data!, "video/street-traffic-640x352.mp4") });
    await rtsp.start();
    try {
      const out = path.join(dir, "live.mp4");
      const r = await runCli([
        "detect",
        "--model",
        MANIFEST,
        rtsp.url(),
        "--providers",
        "cpu",
        "--duration",
        "6",
        "--fps",
        "5",
        "--line",
        "0.25,0.55,1,0.55,road",
        "--json",
        "--out",
        out,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as { kind: string; frames: number; fps: number; lines: { line_id: string }[] };
      expect(j.kind).toBe("stream");
      expect(j.frames).toBeGreaterThan(5);
      expect(j.lines.map((l) => l.line_id)).toEqual(["road"]);
      expect(existsSync(out)).toBe(true);
    } finally {
      await rtsp.kill();
    }
  }, 90_000);
});
