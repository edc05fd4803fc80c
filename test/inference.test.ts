import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSession, loadManifest, ManifestError, resolveModelFile, TensorBuffer } from "../runtime/inference/index.js";
import { loadDetectionManifest } from "../runtime/detect/detectionManifest.js";
import { captureLogger, makeConstModel, writeManifest } from "./helpers/detectModels.js";
import { REPO_ROOT, sharedDataDir } from "./helpers/sharedData.js";

let dir: string;
let model: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-inference-"));
  // yolov5 layout, 1 anchor, 2 classes
  model = makeConstModel(dir, "tiny", { batch: 1, width: 32, height: 32, shape: [1, 1, 7], values: [16, 16, 8, 8, 0.9, 0.1, 0.8] });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("model manifests", () => {
  it("loads a valid manifest and resolves the file relative to it", () => {
    const m = loadDetectionManifest(writeManifest(dir, "ok", model, "yolov5", { width: 32, height: 32 }, ["a", "b"]));
    expect(m.files.fp32).toBe(model);
    expect(m.output.decoder).toBe("yolov5");
    expect(m.input.letterbox_pad).toBe(114);
  });

  it("names the file and every problem of an invalid manifest", () => {
    const file = writeManifest(dir, "bad", model, "yolov5", { width: 32, height: 32 }, [], { output: { name: "output", decoder: "yolov9" } });
    expect(() => loadDetectionManifest(file)).toThrow(ManifestError);
    let message = "";
    try {
      loadDetectionManifest(file);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`model manifest ${file}:`);
    expect(message).toContain('output.decoder: unknown decoder "yolov9" (known: yolov8, yolov5, yolox, end2end, rtdetr, nanodet, nanodet-plus, ssd)');
    expect(message).toContain("labels: Too small");
  });

  it("says when the manifest is missing or not JSON", () => {
    expect(() => loadManifest(path.join(dir, "nope.json"))).toThrow(`model manifest ${path.join(dir, "nope.json")}: file not found`);
    const broken = path.join(dir, "broken.json");
    writeFileSync(broken, "{ not json");
    expect(() => loadManifest(broken)).toThrow(/: not valid JSON: /);
  });

  it("resolves ${env:X} and ${env:X:-default} in file references", () => {
    expect(resolveModelFile("${env:MODELS}/a.onnx", "/base", { MODELS: "/data/m" })).toBe("/data/m/a.onnx");
    expect(resolveModelFile("${env:MODELS:-../shared}/a.onnx", "/base/x", {})).toBe("/base/shared/a.onnx");
    expect(() => resolveModelFile("${env:MODELS}/a.onnx", "/base", {})).toThrow(
      'environment variable MODELS is not set (used in "${env:MODELS}/a.onnx")',
    );
  });

  it("rejects YOLOX strides that do not divide the input", () => {
    const file = writeManifest(dir, "strides", model, "yolox", { width: 36, height: 32 }, ["a"], {
      output: { name: "output", decoder: "yolox", strides: [8, 16] },
    });
    expect(() => loadDetectionManifest(file)).toThrow("output.strides: every stride must divide the input size 36x32");
  });

  describe.skipIf(!sharedDataDir())("the shipped YOLOX-Nano manifest", () => {
    it("points at the shared model and its SHA-256 matches", async () => {
      const m = loadDetectionManifest(path.join(REPO_ROOT, "models/yolox_nano/manifest.json"));
      expect(m.labels[7]).toBe("truck");
      const { log } = captureLogger();
      const s = await createSession(m, { providers: ["cpu"], threads: 1, variant: "auto", log });
      expect(s.provider).toBe("cpu");
      expect(s.inputShape("images")).toEqual([1, 3, 416, 416]);
      expect(s.dynamicBatch("images")).toBe(false);
      await s.release();
    });
  });
});

describe("sessions", () => {
  it("falls back tensorrt → cuda → cpu, logging each missing provider", async () => {
    const { log, lines } = captureLogger();
    const m = loadManifest(writeManifest(dir, "chain", model, "yolov5", { width: 32, height: 32 }, ["a", "b"]));
    const s = await createSession(m, {
      providers: ["tensorrt", "cuda", "cpu"],
      threads: 1,
      variant: "auto",
      log,
    });
    expect(s.provider).toBe("cpu");
    expect(s.skipped.map((x) => x.provider)).toEqual(["tensorrt", "cuda"]);
    const msgs = lines().map((l) => String(l.msg));
    expect(msgs.some((x) => /^provider tensorrt unavailable: .+, falling back to cuda$/.test(x))).toBe(true);
    expect(msgs.some((x) => /^provider cuda unavailable: .+, falling back to cpu$/.test(x))).toBe(true);
    expect(msgs).toContain("model chain: using provider cpu");
    await s.release();
  });

  it("runs the session in a worker thread with the same results and the same fallback", async () => {
    const { log, lines } = captureLogger();
    const m = loadManifest(writeManifest(dir, "threaded", model, "yolov5", { width: 32, height: 32 }, ["a", "b"]));
    const inWorker = await createSession(m, { providers: ["tensorrt", "cuda", "cpu"], threads: 1, variant: "auto", thread: "worker", log });
    const onMain = await createSession(m, { providers: ["cpu"], threads: 1, variant: "auto", log });
    try {
      expect(inWorker.provider).toBe("cpu");
      expect(lines().some((l) => /^provider cuda unavailable: .+, falling back to cpu$/.test(String(l.msg)))).toBe(true);
      expect(inWorker.inputShape("images")).toEqual([1, 3, 32, 32]);
      const buf = new TensorBuffer({ width: 32, height: 32, color: "rgb", scale: 1, mean: [0, 0, 0], std: [1, 1, 1] }, 1);
      buf.data.fill(7);
      for (let i = 0; i < 3; i++) {
        const a = (await inWorker.run({ images: buf.tensor(1) })).output!;
        const b = (await onMain.run({ images: buf.tensor(1) })).output!;
        expect(a.dims).toEqual(b.dims);
        expect([...(a.data as Float32Array)]).toEqual([...(b.data as Float32Array)]);
      }
    } finally {
      await inWorker.release();
      await onMain.release();
    }
    await expect(inWorker.run({})).rejects.toThrow("session released");
  });

  it("hands a worker session's outputs back in shared memory allocated once, and keeps concurrent runs apart", async () => {
    const { log } = captureLogger();
    // An output that follows the input: x = 16 + 0.1 × the input's mean.
    const varying = makeConstModel(dir, "varying", {
      batch: 1,
      width: 32,
      height: 32,
      shape: [1, 1, 7],
      values: [16, 16, 8, 8, 0.9, 0.1, 0.8],
      mask: [0.1, 0, 0, 0, 0, 0, 0],
    });
    const m = loadManifest(writeManifest(dir, "sharedout", varying, "yolov5", { width: 32, height: 32 }, ["a", "b"]));
    const inWorker = await createSession(m, { providers: ["cpu"], threads: 1, variant: "auto", thread: "worker", log });
    const onMain = await createSession(m, { providers: ["cpu"], threads: 1, variant: "auto", log });
    const spec = { width: 32, height: 32, color: "rgb" as const, scale: 1, mean: [0, 0, 0] as const, std: [1, 1, 1] as const };
    const input = (v: number, shared = false) => {
      const b = new TensorBuffer(spec, 1, { shared });
      b.data.fill(v);
      return b.tensor(1);
    };
    try {
      const buffers: ArrayBufferLike[] = [];
      for (const v of [1, 2, 3, 4]) {
        const a = (await inWorker.run({ images: input(v, v % 2 === 0) })).output!;
        const b = (await onMain.run({ images: input(v) })).output!;
        expect([...(a.data as Float32Array)], `input ${v}`).toEqual([...(b.data as Float32Array)]);
        buffers.push((a.data as Float32Array).buffer);
      }
      // The first run sizes the shared buffer; every later one is written into it.
      expect(buffers[0]).not.toBeInstanceOf(SharedArrayBuffer);
      expect(buffers[1]).toBeInstanceOf(SharedArrayBuffer);
      expect(new Set(buffers.slice(1)).size).toBe(1);
      // Two runs in flight at once: the second must not overwrite the first's result.
      const [x, y] = await Promise.all([inWorker.run({ images: input(5) }), inWorker.run({ images: input(6) })]);
      const [x0, y0] = [(await onMain.run({ images: input(5) })).output!, (await onMain.run({ images: input(6) })).output!];
      expect([...(x.output!.data as Float32Array)]).toEqual([...(x0.data as Float32Array)]);
      expect([...(y.output!.data as Float32Array)]).toEqual([...(y0.data as Float32Array)]);
      expect([...(x0.data as Float32Array)]).not.toEqual([...(y0.data as Float32Array)]);
    } finally {
      await inWorker.release();
      await onMain.release();
    }
  });

  it("converts camera frames in the worker the same as on the main thread, from shared or private pixels", async () => {
    const { log } = captureLogger();
    const varying = makeConstModel(dir, "varying2", {
      batch: 1,
      width: 32,
      height: 32,
      shape: [1, 1, 7],
      values: [16, 16, 8, 8, 0.9, 0.1, 0.8],
      mask: [0.1, 0, 0, 0, 0, 0, 0],
    });
    const m = loadManifest(writeManifest(dir, "frames", varying, "yolov5", { width: 32, height: 32 }, ["a", "b"]));
    const inWorker = await createSession(m, { providers: ["cpu"], threads: 1, variant: "auto", thread: "worker", log });
    const onMain = await createSession(m, { providers: ["cpu"], threads: 1, variant: "auto", log });
    const spec = { width: 32, height: 32, color: "bgr" as const, scale: 1 / 255, mean: [0.1, 0.2, 0.3] as const, std: [0.5, 0.5, 0.5] as const };
    const frame = (v: number, shared: boolean) => {
      const data = shared ? new Uint8Array(new SharedArrayBuffer(32 * 32 * 3)) : new Uint8Array(32 * 32 * 3);
      // A picture in the top rows, letterbox grey below.
      for (let i = 0; i < data.length; i++) data[i] = i < 20 * 32 * 3 ? (i * v) % 251 : 114;
      return { width: 32, height: 32, format: "rgb24" as const, data };
    };
    try {
      const mainBuf = new TensorBuffer(spec, 1);
      const workerBuf = new TensorBuffer(spec, 1, { shared: true });
      const outs = new Set<string>();
      for (const [v, shared] of [
        [3, true],
        [7, false],
        [7, true],
        [11, false],
      ] as const) {
        const f = frame(v, shared);
        const a = (await inWorker.runFrames("images", workerBuf, [f])).output!;
        const b = (await onMain.runFrames("images", mainBuf, [f])).output!;
        const ref = new TensorBuffer(spec, 1);
        ref.fill(0, f);
        const c = (await onMain.run({ images: ref.tensor(1) })).output!;
        expect([...(a.data as Float32Array)], `frame ${v}`).toEqual([...(c.data as Float32Array)]);
        expect([...(b.data as Float32Array)], `frame ${v}`).toEqual([...(c.data as Float32Array)]);
        outs.add(String((a.data as Float32Array)[0]));
      }
      expect(outs.size).toBe(3);
      // The worker converted them: the caller's buffer was never written.
      expect(workerBuf.data.every((x) => x === 0)).toBe(true);
    } finally {
      await inWorker.release();
      await onMain.release();
    }
  });

  it("fails with every provider's reason when none works", async () => {
    const { log, lines } = captureLogger();
    const m = loadManifest(writeManifest(dir, "gpuonly", model, "yolov5", { width: 32, height: 32 }, ["a", "b"]));
    await expect(createSession(m, { providers: ["tensorrt", "cuda"], threads: 1, variant: "auto", log })).rejects.toThrow(
      /^model gpuonly: no execution provider worked \(tensorrt: .+; cuda: .+\)$/,
    );
    expect(lines().some((l) => String(l.msg).startsWith("provider cuda unavailable:") && String(l.msg).endsWith("no provider left"))).toBe(true);
  });

  it("uses a later provider when an earlier one works only in a test double", async () => {
    const { log } = captureLogger();
    const m = loadManifest(writeManifest(dir, "double", model, "yolov5", { width: 32, height: 32 }, ["a", "b"]));
    const seen: string[] = [];
    await expect(
      createSession(m, {
        providers: ["cuda", "cpu"],
        threads: 1,
        variant: "auto",
        log,
        create: (_file, o) => {
          seen.push(JSON.stringify(o.executionProviders));
          throw new Error("libcudart.so.12: cannot open shared object file");
        },
      }),
    ).rejects.toThrow("cuda: libcudart.so.12: cannot open shared object file; cpu: libcudart.so.12");
    // One provider per attempt: onnxruntime-node would throw on the whole list otherwise.
    expect(seen).toEqual([
      '[{"name":"cuda","deviceId":0,"cudnn_conv_algo_search":"HEURISTIC","arena_extend_strategy":"kSameAsRequested"}]',
      '["cpu"]',
    ]);
  });

  it("refuses a model whose SHA-256 does not match, naming both hashes", async () => {
    const { log } = captureLogger();
    const copy = path.join(dir, "corrupt.onnx");
    writeFileSync(copy, Buffer.alloc(0));
    const manifestFile = writeManifest(dir, "corrupt", model, "yolov5", { width: 32, height: 32 }, ["a", "b"]);
    appendFileSync(model, Buffer.from([0])); // corrupt the file after the manifest recorded its hash
    try {
      const m = loadManifest(manifestFile);
      await expect(createSession(m, { providers: ["cpu"], threads: 1, variant: "auto", log })).rejects.toThrow(
        new RegExp(
          `variants\\.fp32\\.file ${model.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: sha256 mismatch \\(manifest [0-9a-f]{64}, file [0-9a-f]{64}\\): corrupt or replaced model`,
        ),
      );
    } finally {
      // Restore the fixture for the other tests.
      model = makeConstModel(dir, "tiny", { batch: 1, width: 32, height: 32, shape: [1, 1, 7], values: [16, 16, 8, 8, 0.9, 0.1, 0.8] });
    }
  });

  it("says which variant is missing", async () => {
    const { log } = captureLogger();
    const m = loadManifest(writeManifest(dir, "variants", model, "yolov5", { width: 32, height: 32 }, ["a", "b"]));
    await expect(createSession(m, { providers: ["cpu"], threads: 1, variant: "int8", log })).rejects.toThrow(
      "cpu: the manifest has no int8 variant (has: fp32)",
    );
  });
});

describe("TensorBuffer", () => {
  const spec = { width: 2, height: 1, color: "bgr" as const, scale: 1, mean: [0, 0, 0] as const, std: [1, 1, 1] as const };

  it("converts RGB frames to planar BGR in one pass, into the same memory every time", () => {
    const b = new TensorBuffer(spec, 2);
    const memory = b.data;
    b.fill(0, { width: 2, height: 1, format: "rgb24", data: Uint8Array.from([1, 2, 3, 4, 5, 6]) });
    b.fill(1, { width: 2, height: 1, format: "bgr24", data: Uint8Array.from([7, 8, 9, 10, 11, 12]) });
    // slot 0: B plane [3, 6], G [2, 5], R [1, 4]; slot 1 is already BGR.
    expect([...b.data]).toEqual([3, 6, 2, 5, 1, 4, 7, 10, 8, 11, 9, 12]);
    expect(b.data).toBe(memory);
    expect(b.tensor(1).dims).toEqual([1, 3, 1, 2]);
    expect(b.tensor(2).dims).toEqual([2, 3, 1, 2]);
    expect((b.tensor(2).data as Float32Array).buffer).toBe(memory.buffer);
  });

  it("applies scale, mean and std per channel in the model's channel order", () => {
    const b = new TensorBuffer({ width: 1, height: 1, color: "rgb", scale: 1 / 255, mean: [0.5, 0.25, 0], std: [0.5, 0.25, 2] }, 1);
    b.fill(0, { width: 1, height: 1, format: "bgr24", data: Uint8Array.from([255, 0, 255]) });
    // RGB = (255, 0, 255)
    expect([...b.data].map((v) => Math.round(v * 1e5) / 1e5)).toEqual([1, -1, 0.5]);
  });

  it("skips rows of one grey value that the slot already holds, and converts every row that changed", () => {
    const w = 5,
      h = 6;
    const sp = { width: w, height: h, color: "rgb" as const, scale: 1 / 255, mean: [0.5, 0.25, 0] as const, std: [0.5, 0.25, 2] as const };
    const b = new TensorBuffer(sp, 2);
    const ref = (f: Uint8Array, format: "rgb24" | "bgr24") => {
      const out: number[] = [];
      for (let c = 0; c < 3; c++)
        for (let i = 0; i < w * h; i++) out.push((f[i * 3 + (format === "rgb24" ? c : 2 - c)]! / 255 - sp.mean[c]!) / sp.std[c]!);
      return out;
    };
    const close = (a: ArrayLike<number>, e: number[]) => expect(Array.from(a, (v, i) => Math.abs(v - e[i]!) < 1e-5).every(Boolean)).toBe(true);
    // A pseudo-random walk over frames: letterbox bands of changing height and grey, pictures,
    // rows of one value that are not the letterbox, channel order flips, both slots.
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    for (let k = 0; k < 200; k++) {
      const f = new Uint8Array(w * h * 3);
      const band = rnd(h + 1);
      const grey = [0, 114, 255, rnd(256)][rnd(4)]!;
      for (let y = 0; y < h; y++) {
        const uniform = rnd(5) === 0;
        const v = rnd(256);
        for (let x = 0; x < w * 3; x++) f[y * w * 3 + x] = y >= band ? grey : uniform ? v : rnd(256);
      }
      const slot = rnd(2);
      const format = rnd(3) === 0 ? "bgr24" : "rgb24";
      b.fill(slot, { width: w, height: h, format, data: f });
      close(b.data.subarray(slot * 3 * w * h, (slot + 1) * 3 * w * h), ref(f, format));
    }
    // A grey row the slot already holds is not written again; invalidate() makes fill write it.
    const grey = { width: w, height: h, format: "rgb24" as const, data: new Uint8Array(w * h * 3).fill(114) };
    b.fill(0, grey);
    b.data[0] = 42;
    b.fill(0, grey);
    expect(b.data[0]).toBe(42);
    b.invalidate();
    b.fill(0, grey);
    close(b.data.subarray(0, 3 * w * h), ref(grey.data, "rgb24"));
  });

  it("refuses frames of another size", () => {
    const b = new TensorBuffer(spec, 1);
    expect(() => b.fill(0, { width: 4, height: 1, format: "rgb24", data: new Uint8Array(12) })).toThrow("frame is 4x1, the model needs 2x1");
    expect(() => b.tensor(2)).toThrow("batch of 2 is outside 1..1");
  });
});
