import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatProblem } from "../runtime/config/errors.js";
import { configLocator, loadConfig } from "../runtime/config/load.js";
import { checkConfigModels } from "../runtime/detect/configCheck.js";
import { checkModel } from "../runtime/detect/modelCheck.js";
import { runCli } from "./helpers/cli.js";
import { sha256Of, writeManifest } from "./helpers/detectModels.js";
import { writeFixtureModel, type FixtureSpec } from "./helpers/onnxFixtures.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-checkmodels-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const COCO5 = ["person", "bicycle", "car", "bus", "truck"];
const zeros = (n: number) => new Array<number>(n).fill(0);

/** A YOLOv8-layout model at 64x64 (84 anchors) with `classes` classes. */
function v8Model(name: string, classes: number, width = 64, height = 64): string {
  const n = (width / 8) * (height / 8) + (width / 16) * (height / 16) + (width / 32) * (height / 32);
  const spec: FixtureSpec = { width, height, outputs: [{ name: "output0", shape: [1, 4 + classes, n], values: zeros((4 + classes) * n) }] };
  return writeFixtureModel(dir, name, spec);
}

async function problemsOf(manifest: string): Promise<string[]> {
  return (await checkModel(manifest)).problems;
}

describe("check-config opens every manifest and says what is wrong, in words", () => {
  it("passes a manifest that agrees with its model", async () => {
    const model = v8Model("good", 5);
    expect(
      await problemsOf(
        writeManifest(dir, "good", model, { decoder: "yolov8", name: "output0", strides: [8, 16, 32] }, { width: 64, height: 64 }, COCO5),
      ),
    ).toEqual([]);
  });

  it("a label list that does not match the output's classes", async () => {
    const model = v8Model("coco80", 80);
    const m = writeManifest(dir, "coco80-5labels", model, { decoder: "yolov8", name: "output0" }, { width: 64, height: 64 }, COCO5);
    expect(await problemsOf(m)).toEqual(["the model has 84 values per box = 4 + 80 classes; the manifest lists 5 labels"]);
  });

  it("an input size that is not the model's", async () => {
    const model = v8Model("size", 5);
    const m = writeManifest(dir, "size", model, { decoder: "yolov8", name: "output0" }, { width: 416, height: 416 }, COCO5);
    expect(await problemsOf(m)).toEqual(["the model's input images is [1, 3, 64, 64] (64x64); the manifest says 416x416"]);
  });

  it("strides that do not give the model's anchors", async () => {
    const model = v8Model("strides", 5);
    const m = writeManifest(dir, "strides", model, { decoder: "yolov8", name: "output0", strides: [8, 16] }, { width: 64, height: 64 }, COCO5);
    expect(await problemsOf(m)).toEqual(["the model has 84 anchors; strides [8, 16] on 64x64 give 80"]);
  });

  it("an unknown decoder, and a decoder that does not fit the layout", async () => {
    const model = v8Model("dec", 5);
    const unknown = writeManifest(dir, "dec-unknown", model, { decoder: "yolov9", name: "output0" }, { width: 64, height: 64 }, COCO5);
    expect(await problemsOf(unknown)).toEqual([
      'output.decoder: unknown decoder "yolov9" (known: yolov8, yolov5, yolox, end2end, rtdetr, nanodet, nanodet-plus, ssd)',
    ]);
    const wrong = writeManifest(dir, "dec-wrong", model, { decoder: "yolox", name: "output0" }, { width: 64, height: 64 }, COCO5);
    expect(await problemsOf(wrong)).toEqual([
      "the model has 84 values per box = 4 + 1 objectness + 79 classes; the manifest lists 5 labels",
      "the model has 9 anchors; strides [8, 16, 32] on 64x64 give 84",
      'the outputs fit decoder "yolov8": one output output0 [1, 9, 84]: 9 = 4 + 5 channels first, then 84 anchors = the stride 8/16/32 grid',
    ]);
  });

  it("an output name the model does not have, and a multi-output decoder given one name", async () => {
    const model = v8Model("names", 5);
    const m = writeManifest(dir, "names", model, { decoder: "yolov8", name: "output" }, { width: 64, height: 64 }, COCO5);
    expect(await problemsOf(m)).toEqual(['the model has no output "output" (outputs: output0 [1, 9, 84])']);
    const multi = writeManifest(dir, "names-ssd", model, { decoder: "ssd", name: "output0" }, { width: 64, height: 64 }, COCO5);
    expect(await problemsOf(multi)).toEqual([
      "output.name: decoder ssd reads several outputs; name them in tensors: {boxes, scores, classes, count}",
      "output.tensors.boxes: missing",
      "output.tensors.scores: missing",
      "output.tensors.classes: missing",
    ]);
  });

  it("NanoDet tensors that do not match the strides", async () => {
    const outputs: FixtureSpec["outputs"] = [
      { name: "cls_8", shape: [1, 64, 5], values: zeros(64 * 5) },
      { name: "reg_8", shape: [1, 64, 32], values: zeros(64 * 32) },
      { name: "cls_16", shape: [1, 16, 5], values: zeros(16 * 5) },
      { name: "reg_16", shape: [1, 16, 40], values: zeros(16 * 40) },
    ];
    const model = writeFixtureModel(dir, "nano", { width: 64, height: 64, outputs });
    const m = writeManifest(
      dir,
      "nano",
      model,
      { decoder: "nanodet", tensors: { cls: ["cls_8", "cls_16"], reg: ["reg_8", "reg_16"] }, strides: [8, 16, 32] },
      { width: 64, height: 64 },
      COCO5,
    );
    expect(await problemsOf(m)).toEqual([
      "output.tensors.cls names 2 tensors; strides [8, 16, 32] need one per stride",
      "output.tensors.reg names 2 tensors; strides [8, 16, 32] need one per stride",
      'output "reg_16" is [1, 16, 40]; reg_max 7 needs 32 values per box (or 4)',
    ]);
  });

  it("a file whose SHA-256 is not the manifest's, a missing file, and a file that is not ONNX", async () => {
    const model = v8Model("sha", 5);
    const bad = writeManifest(dir, "sha", model, { decoder: "yolov8", name: "output0" }, { width: 64, height: 64 }, COCO5, {
      variants: { fp32: { file: "sha.onnx", sha256: "0".repeat(64) } },
    });
    expect(await problemsOf(bad)).toEqual([
      `variants.fp32.file ${model}: sha256 mismatch (manifest ${"0".repeat(64)}, file ${sha256Of(model)}): corrupt or replaced model`,
    ]);
    const missing = writeManifest(dir, "missing", model, { decoder: "yolov8", name: "output0" }, { width: 64, height: 64 }, COCO5, {
      variants: { fp32: { file: "nope.onnx", sha256: "0".repeat(64) } },
    });
    expect(await problemsOf(missing)).toEqual([`variants.fp32.file ${path.join(dir, "nope.onnx")}: file not found`]);
    const junk = path.join(dir, "junk.onnx");
    writeFileSync(junk, "this is not a model\n");
    const notOnnx = writeManifest(dir, "junk", junk, { decoder: "yolov8", name: "output0" }, { width: 64, height: 64 }, COCO5);
    const [p] = await problemsOf(notOnnx);
    expect(p).toMatch(new RegExp(`^variants\\.fp32\\.file ${junk.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: not an ONNX model \\(`));
  });

  it("places each problem at its config line, checks camera labels, and warns about the demo model on a real camera", async () => {
    const good = v8Model("cfg-good", 5);
    writeManifest(dir, "cfg-good", good, { decoder: "yolov8", name: "output0" }, { width: 64, height: 64 }, COCO5, { domain: "synthetic" });
    const coco = v8Model("cfg-coco", 80);
    writeManifest(dir, "cfg-coco", coco, { decoder: "yolov8", name: "output0" }, { width: 64, height: 64 }, COCO5);
    const file = path.join(dir, "cityedge.yaml");
    writeFileSync(
      file,
      [
        "device_id: dev-1",
        "mqtt:",
        "  url: mqtt://127.0.0.1:1883",
        "broker: { enabled: false }",
        "http: { enabled: false }",
        "cameras:",
        "  - id: gate",
        "    url: rtsp://10.0.0.5/stream",
        "    model: demo",
        "    detection:",
        "      classes: [car, lorry]",
        "      lines:",
        "        - { id: l1, from: [0, 0.5], to: [1, 0.5], classes: [bus, tram] }",
        "      class_merge: { groups: [[car, van]] }",
        "models:",
        "  - id: demo",
        "    manifest: cfg-good.manifest.json",
        "  - id: coco",
        "    manifest: cfg-coco.manifest.json",
        "",
      ].join("\n"),
    );
    const loaded = loadConfig(file);
    const { problems, warnings } = await checkConfigModels(loaded, configLocator(file));
    const has = "person, bicycle, car, bus, truck";
    expect(problems.map(formatProblem)).toEqual([
      `${file}:19:5 models[1].manifest: cfg-coco.manifest.json: the model has 84 values per box = 4 + 80 classes; the manifest lists 5 labels`,
      `${file}:11:22 cameras[0].detection.classes[1]: unknown label "lorry" (model demo has: ${has})`,
      `${file}:13:66 cameras[0].detection.lines[0].classes[1]: unknown label "tram" (model demo has: ${has})`,
      `${file}:14:37 cameras[0].detection.class_merge.groups[0][1]: unknown label "van" (model demo has: ${has})`,
    ]);
    expect(warnings.map(formatProblem)).toEqual([
      `${file}:9:5 cameras[0].model: camera "gate" runs model "demo", which was trained only on synthetic scenes (manifest domain: synthetic): on a real camera it misses vehicles and finds false ones; use a real COCO detector (cityedge models fetch yolox-nano)`,
    ]);

    // The command itself: exit 78, every line on stderr, the warning too.
    const r = await runCli(["check-config", file]);
    expect(r.code).toBe(78);
    for (const p of problems) expect(r.stderr).toContain(formatProblem(p));
    expect(r.stderr).toContain(`${formatProblem(warnings[0]!)} (warning)`);
    expect(r.stderr).toContain("cityedge: refusing to start: 4 problems in the configuration");
  });
});
