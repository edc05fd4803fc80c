import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addModel, parseNames, STILL } from "../runtime/detect/addModel.js";
import { COCO_LABELS } from "../runtime/detect/labels.js";
import { checkModel } from "../runtime/detect/modelCheck.js";
import { tryModel } from "../runtime/detect/tryModel.js";
import { runCli } from "./helpers/cli.js";
import { captureLogger, sha256Of } from "./helpers/detectModels.js";
import { rng, writeFixtureModel, type FixtureSpec } from "./helpers/onnxFixtures.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-modelsadd-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const r = rng(99);
const random = (n: number, lo = 0, hi = 1) => Array.from({ length: n }, () => lo + (hi - lo) * r());
const NAMES3 = "{0: 'person', 1: 'bicycle', 2: 'car'}";
const ULTRA = (imgsz: string) => ({
  author: "Ultralytics",
  task: "detect",
  stride: "32",
  imgsz,
  names: NAMES3,
  description: "Ultralytics YOLOv8n model",
});

/** A generated model of each layout, as its exporter lays it out (64x64 input unless said). */
const LAYOUTS: Record<string, FixtureSpec> = {
  "ultralytics-yolov8": {
    width: 64,
    height: 64,
    metadata: ULTRA("[64, 64]"),
    outputs: [{ name: "output0", shape: [1, 7, 84], values: random(7 * 84, 0, 60) }],
  },
  yolov5: {
    width: 64,
    height: 64,
    metadata: { stride: "32", names: NAMES3 },
    outputs: [{ name: "output0", shape: [1, 252, 8], values: random(252 * 8, 0, 60) }],
  },
  // 128x128: 336 anchors, more than the 85 values per box (as at any real input size).
  yolox: { width: 128, height: 128, outputs: [{ name: "output", shape: [1, 336, 85], values: random(336 * 85) }] },
  "yolox-decoded": { width: 128, height: 128, extraOps: ["Exp"], outputs: [{ name: "output", shape: [1, 336, 85], values: random(336 * 85) }] },
  "ultralytics-nms": {
    width: 64,
    height: 64,
    metadata: ULTRA("[64, 64]"),
    outputs: [{ name: "output0", shape: [1, 300, 6], values: random(300 * 6) }],
  },
  rtdetr: { width: 64, height: 64, metadata: ULTRA("[64, 64]"), outputs: [{ name: "output0", shape: [1, 300, 7], values: random(300 * 7) }] },
  nanodet: {
    width: 64,
    height: 64,
    outputs: [8, 16, 32].flatMap((s) => {
      const hw = (64 / s) ** 2;
      return [
        { name: `cls_pred_stride_${s}`, shape: [1, hw, 80] as (number | "N")[], values: random(hw * 80, 0, 0.5) },
        { name: `dis_pred_stride_${s}`, shape: [1, hw, 32] as (number | "N")[], values: random(hw * 32, -2, 2) },
      ];
    }),
  },
  "nanodet-plus": { width: 96, height: 96, outputs: [{ name: "output", shape: [1, 193, 112], values: random(193 * 112, -1, 1) }] },
  ssd: {
    width: 64,
    height: 64,
    outputs: [
      { name: "detection_boxes", shape: [1, 10, 4], values: random(40, 0, 1) },
      { name: "detection_scores", shape: [1, 10], values: random(10) },
      { name: "detection_classes", shape: [1, 10], values: random(10, 0, 79).map(Math.floor), type: "int64" },
      { name: "num_detections", shape: [1], values: [10] },
    ],
  },
};

const file = (name: string) => writeFixtureModel(dir, name, LAYOUTS[name]!);

describe("models add recognises every layout from the graph and writes a manifest that loads", () => {
  it.each([
    ["ultralytics-yolov8", "yolov8", { name: "output0", strides: [8, 16, 32] }, ["person", "bicycle", "car"], "rgb", "center"],
    ["yolov5", "yolov5", { name: "output0", strides: [8, 16, 32], anchors_per_cell: 3 }, ["person", "bicycle", "car"], "rgb", "center"],
    ["yolox", "yolox", { name: "output", strides: [8, 16, 32] }, COCO_LABELS, "bgr", "top-left"],
    ["yolox-decoded", "yolov5", { name: "output", strides: [8, 16, 32], anchors_per_cell: 1 }, COCO_LABELS, "bgr", "top-left"],
    ["ultralytics-nms", "end2end", { name: "output0" }, ["person", "bicycle", "car"], "rgb", "center"],
    ["rtdetr", "rtdetr", { name: "output0" }, ["person", "bicycle", "car"], "rgb", "center"],
    [
      "nanodet",
      "nanodet",
      {
        tensors: {
          cls: ["cls_pred_stride_8", "cls_pred_stride_16", "cls_pred_stride_32"],
          reg: ["dis_pred_stride_8", "dis_pred_stride_16", "dis_pred_stride_32"],
        },
        strides: [8, 16, 32],
        reg_max: 7,
      },
      COCO_LABELS,
      "bgr",
      "top-left",
    ],
    ["nanodet-plus", "nanodet-plus", { name: "output", strides: [8, 16, 32, 64], reg_max: 7, center_offset: 0 }, COCO_LABELS, "bgr", "top-left"],
    [
      "ssd",
      "ssd",
      { tensors: { boxes: "detection_boxes", scores: "detection_scores", classes: "detection_classes", count: "num_detections" }, box_order: "yxyx" },
      COCO_LABELS,
      "rgb",
      "top-left",
    ],
  ] as const)("%s → %s", async (name, decoder, output, labels, color, letterbox) => {
    const out = path.join(dir, "added", name);
    const added = await addModel(file(name), { out, ...(name === "ssd" ? { labels: "coco" } : {}) });
    expect(added.decoder).toBe(decoder);
    expect(added.manifest.output).toMatchObject({ decoder, ...output });
    expect(added.manifest.labels).toEqual([...labels]);
    expect(added.manifest.input).toMatchObject({ name: "images", color, letterbox });
    // The manifest on disk is what the daemon loads, and check-config finds nothing wrong with it.
    const written = JSON.parse(readFileSync(added.manifestFile, "utf8")) as { variants: { fp32: { file: string; sha256: string } } };
    expect(written.variants.fp32.sha256).toBe(sha256Of(path.join(out, written.variants.fp32.file)));
    expect((await checkModel(added.manifestFile)).problems).toEqual([]);
    // And it runs on the shipped still, through the daemon's decoder.
    const trial = await tryModel(added.manifestFile, STILL, captureLogger().log, ["cpu"]);
    expect(trial.providers).toEqual([{ provider: "cpu", ms: expect.any(Number) }]);
  });

  it("reads Ultralytics' names (a Python dict) and a JSON list", () => {
    expect(parseNames("{0: 'person', 1: \"teddy's bear\", 2: 'hair drier'}")).toEqual(["person", "teddy's bear", "hair drier"]);
    expect(parseNames('["a", "b"]')).toEqual(["a", "b"]);
    expect(parseNames("{0: 'a', 2: 'c'}")).toBeUndefined();
  });

  it("takes the input size from imgsz when the input is dynamic, and asks for --size when nothing says", async () => {
    const dyn: FixtureSpec = { ...LAYOUTS["ultralytics-yolov8"]!, batch: "N" };
    const f = writeFixtureModel(dir, "dyn", dyn);
    // The fixture writer fixes height and width; an export with a dynamic size names them.
    const added = await addModel(f, { out: path.join(dir, "added", "dyn") });
    expect(added.manifest.input).toMatchObject({ width: 64, height: 64 });
    await expect(addModel(f, { out: path.join(dir, "added", "dyn2"), size: { width: 640, height: 640 } })).rejects.toThrow(
      "--size 640x640: the model's input is fixed at 64x64",
    );
  });

  it("refuses an unknown layout with what it saw and the layouts it knows", async () => {
    const f = writeFixtureModel(dir, "seg", {
      width: 64,
      height: 64,
      outputs: [
        { name: "output0", shape: [1, 39, 84], values: random(39 * 84) },
        { name: "protos", shape: [1, 32, 16, 16], values: random(32 * 256) },
      ],
    });
    const err = await addModel(f, { out: path.join(dir, "added", "seg") }).catch((e: Error) => e);
    expect((err as Error).message).toBe(
      [
        "no known output layout fits this model (outputs: output0 [1, 39, 84] float, protos [1, 32, 16, 16] float; input 64x64).",
        "Known layouts:",
        "  yolov8: [B, 4+C, N]: cx, cy, w, h in input pixels, then C class scores (Ultralytics YOLOv8/YOLO11)",
        "  yolov5: [B, N, 5+C]: cx, cy, w, h in input pixels, objectness, C class scores (YOLOv5, YOLOv7, YOLOX with decoding)",
        "  yolox: [B, N, 5+C]: per grid cell x, y offsets and log w, h in cells, objectness, C class scores (YOLOX)",
        "  end2end: [B, K, 6]: x1, y1, x2, y2 in input pixels, score, class id, NMS done in the graph (Ultralytics nms=True, YOLOv10)",
        "  rtdetr: [B, K, 4+C]: cx, cy, w, h normalized 0..1, then C class scores, one row per query (RT-DETR)",
        "  nanodet: per stride cls [B, HW, C] and reg [B, HW, 4*(reg_max+1)] distance distributions (NanoDet, GFL heads)",
        "  nanodet-plus: [B, N, C + 4*(reg_max+1)]: C class scores, then 4 distance distributions, levels concatenated (NanoDet-Plus)",
        "  ssd: boxes [B, K, 4], scores [B, K], classes [B, K] and count [B], NMS done in the graph (SSD, TensorFlow Object Detection API)",
      ].join("\n"),
    );
    const segTask = writeFixtureModel(dir, "segtask", { ...LAYOUTS["ultralytics-yolov8"]!, metadata: { ...ULTRA("[64, 64]"), task: "segment" } });
    await expect(addModel(segTask, { out: path.join(dir, "added", "segtask") })).rejects.toThrow(
      'the model\'s metadata says task "segment"; cityedge runs detection models only (outputs: output0 [1, 7, 84] float)',
    );
  });

  it("asks for labels when the model has neither names nor 80 classes, and checks their count", async () => {
    const f = writeFixtureModel(dir, "yx3", { width: 64, height: 64, outputs: [{ name: "output", shape: [1, 84, 8], values: random(84 * 8) }] });
    await expect(addModel(f, { out: path.join(dir, "added", "yx3") })).rejects.toThrow(
      "the model has 3 classes and names none in its metadata: pass --labels FILE (one label per line)",
    );
    const labels = path.join(dir, "three.txt");
    writeFileSync(labels, "car\nbus\ntruck\n");
    const added = await addModel(f, { out: path.join(dir, "added", "yx3"), labels });
    expect(added.manifest.labels).toEqual(["car", "bus", "truck"]);
    await expect(addModel(f, { out: path.join(dir, "added", "yx3b"), labels: "coco" })).rejects.toThrow(
      "the model has 3 classes; COCO (--labels coco) gives 80 labels",
    );
  });

  it("lists external-data files with their sha256, and check-config catches a changed one", async () => {
    const f = writeFixtureModel(dir, "ext", { ...LAYOUTS["ultralytics-yolov8"]!, externalData: "ext.weights" });
    const out = path.join(dir, "added", "ext");
    const added = await addModel(f, { out });
    const written = JSON.parse(readFileSync(added.manifestFile, "utf8")) as {
      variants: { fp32: { external_data: { file: string; sha256: string }[] } };
    };
    expect(written.variants.fp32.external_data).toEqual([{ file: "ext.weights", sha256: sha256Of(path.join(out, "ext.weights")) }]);
    expect(existsSync(path.join(out, "ext.weights"))).toBe(true);
    expect((await checkModel(added.manifestFile)).problems).toEqual([]);
    writeFileSync(path.join(out, "ext.weights"), "changed");
    const [p] = (await checkModel(added.manifestFile)).problems;
    expect(p).toMatch(
      /^variants\.fp32\.external_data\[0\] .*ext\.weights: sha256 mismatch \(manifest [0-9a-f]{64}, file [0-9a-f]{64}\): corrupt or replaced model$/,
    );
  });

  it("the command: adds, runs the model once on the still and prints what it found and the time per provider", async () => {
    const out = path.join(dir, "cli", "v8");
    const res = await runCli(["models", "add", file("ultralytics-yolov8"), "--out", out, "--id", "v8"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`added v8: ${path.join(out, "manifest.json")}`);
    expect(res.stdout).toContain("layout  yolov8: one output output0 [1, 7, 84]");
    expect(res.stdout).toContain("labels  3 from the model's metadata (names): person, bicycle, car");
    expect(res.stdout).toMatch(/found +on .*street\.jpg: /);
    expect(res.stdout).toMatch(/tensorrt +unavailable: /);
    expect(res.stdout).toMatch(/cpu +[\d.]+ ms per run/);
    const again = await runCli(["models", "add", file("ultralytics-yolov8"), "--out", out]);
    expect(again.code).toBe(65);
    expect(again.stderr).toContain("manifest.json exists already (--force replaces it)");
    const help = await runCli(["models", "add", "--help"]);
    expect(help.stdout).toContain("Usage: cityedge models add FILE.onnx");
  }, 60_000);
});
