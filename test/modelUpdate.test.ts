import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { makeConstModel } from "./helpers/detectModels.js";
import { get, until } from "./helpers/http.js";
import { testSigner } from "./helpers/signing.js";
import { freePort, MOSQUITTO_BIN, Mosquitto } from "./helpers/mosquitto.js";
import { parsePrometheus, sampleValue } from "./helpers/promParse.js";
import { validateMessage } from "./helpers/schemas.js";
import { REPO_ROOT, sharedDataDir } from "./helpers/sharedData.js";
import { Subscriber, type Received } from "./helpers/subscriber.js";

const shared = sharedDataDir();
const BASE = "cityedge/mu-test-01";
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/**
 * A different but equivalent YOLOX file: the shipped bytes plus a ModelProto doc_string (field 6),
 * which protobuf merges, so onnxruntime loads it and its SHA-256 differs.
 */
function variantOf(model: Buffer, note: string): Buffer {
  const text = Buffer.from(note, "utf8");
  if (text.length > 127) throw new Error("note too long for a one-byte varint");
  return Buffer.concat([model, Buffer.from([0x32, text.length]), text]);
}

interface Health {
  state: string;
  parts: Record<string, { state: string; runs?: number; model_version?: string; restarts?: number; cameras?: Record<string, { frames: number }> }>;
}

/**
 * update_model, snapshot and restart_pipeline against the real daemon: YOLOX-Nano on the
 * street clip, a real mosquitto, model files served over HTTP from this test.
 */
describe.skipIf(!shared || !MOSQUITTO_BIN)("update_model, snapshot and restart_pipeline on a running detector", () => {
  let dir: string;
  let broker: Mosquitto;
  let daemon: DaemonProcess;
  let sub: Subscriber;
  let cmd: MqttClient;
  let files: Server;
  let filesUrl: string;
  let httpPort: number;
  let configFile: string;
  const served = new Map<string, Buffer>();
  let updated: Buffer;
  const url = (p: string) => `http://127.0.0.1:${httpPort}${p}`;

  async function health(): Promise<Health> {
    return JSON.parse((await get(url("/healthz"))).body) as Health;
  }
  const detector = async () => (await health()).parts["detector:yolox_nano"]!;

  let signer: ReturnType<typeof testSigner>;
  let version = 0;
  /** update_model as an operator sends it: a signed statement, each with a newer version. */
  const update = (id: string, fields: Record<string, unknown>) => signer.request("update_model", id, { version: `2.0.${++version}`, ...fields });

  async function command(name: string, payload: Record<string, unknown>, timeoutMs = 120_000): Promise<Received> {
    const topic = `${BASE}/cmd/${name}/response`;
    const answered = () => sub.on(topic).find((m) => m.payload.request_id === payload.id);
    await cmd.publishAsync(`${BASE}/cmd/${name}`, JSON.stringify(payload), { qos: 1 });
    await sub.waitFor(`the answer to ${name} ${String(payload.id)}`, () => answered() !== undefined, timeoutMs);
    const res = answered()!;
    validateMessage(res.topic, res.payload);
    return res;
  }

  /** Resolves once the detector has done `more` runs beyond now: frames keep flowing. */
  async function runsAdvance(more = 3): Promise<void> {
    const from = (await detector()).runs ?? 0;
    await until(`${more} more detector runs`, async () => (((await detector()).runs ?? 0) >= from + more ? true : undefined), 60_000, 200);
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-mu-"));
    const shipped = readFileSync(path.join(shared!, "models/yolox_nano.onnx"));
    updated = variantOf(shipped, "cityedge update test v2");
    served.set("/updated.onnx", updated);
    served.set("/broken.onnx", Buffer.from("this is not an onnx model at all\n".repeat(100)));
    // A real model that loads but cannot run as the detector: other input and output names.
    served.set("/lstm.onnx", readFileSync(path.join(REPO_ROOT, "models/demand_lstm/demand.fp32.onnx")));
    // Right input and output names and, on the check run's grey frame, the 85 values per box the
    // manifest's 80 labels need, so its check run passes; on any other frame 6, so every real
    // frame fails in the decoder.
    served.set(
      "/narrow.onnx",
      readFileSync(
        makeConstModel(dir, "narrow", {
          batch: 1,
          width: 416,
          height: 416,
          shape: [1, 3549, 85],
          values: new Array<number>(3549 * 85).fill(0),
          grey_only: { pad: 114, narrow: 6 },
        }),
      ),
    );
    files = createServer((req, res) => {
      const body = served.get(req.url ?? "");
      if (!body) res.writeHead(404).end();
      else res.writeHead(200, { "content-length": body.length }).end(body);
    });
    await new Promise<void>((r) => files.listen(0, "127.0.0.1", () => r()));
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;

    broker = await new Mosquitto().start();
    httpPort = await freePort();
    signer = testSigner(dir, "mu-test-01");
    configFile = path.join(dir, "config.yaml");
    writeFileSync(
      configFile,
      YAML.stringify({
        device_id: "mu-test-01",
        data_dir: path.join(dir, "data"),
        mqtt: { url: broker.url, reconnect_min_ms: 100, reconnect_max_ms: 1000 },
        http: { port: httpPort, health_publish_ms: 0 },
        commands: {
          public_key: signer.publicKeyFile,
          model_update: { allowed_schemes: ["http"], allowed_hosts: ["127.0.0.1"], allow_private_addresses: true },
        },
        cameras: [{ id: "street", url: `file://${path.join(shared!, "video/street-traffic-640x352.mp4")}`, fps: 4, model: "yolox_nano" }],
        models: [{ id: "yolox_nano", manifest: path.join(REPO_ROOT, "models/yolox_nano/manifest.json"), providers: ["cpu"], threads: 1 }],
      }),
    );
    sub = await Subscriber.connect(broker.url, `${BASE}/cmd/#`);
    cmd = await mqtt.connectAsync(broker.url, { reconnectPeriod: 200 });
    daemon = DaemonProcess.cli(configFile, { CITYEDGE_SHARED_DATA: shared! }).start();
    await until(
      "the detector running and the uplink up",
      async () => {
        const h = await health();
        return h.parts.mqtt?.state === "running" && (h.parts["detector:yolox_nano"]?.runs ?? 0) > 0 ? true : undefined;
      },
      120_000,
      250,
    );
  });

  afterAll(async () => {
    await daemon?.stop();
    await cmd?.endAsync(true);
    await sub?.close();
    await broker?.stop();
    await new Promise<void>((r) => (files ? files.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("/metrics counts frames in, detection runs and inference time per model and provider as frames flow", async () => {
    const scrape = async () => parsePrometheus((await get(url("/metrics"))).body);
    const street = { camera: "street" };
    const first = await scrape();
    await runsAdvance(3);
    const second = await scrape();
    expect(sampleValue(second, "cityedge_camera_frames_total", street)).toBeGreaterThan(sampleValue(first, "cityedge_camera_frames_total", street)!);
    expect(sampleValue(second, "cityedge_detect_frames_total", street)).toBeGreaterThan(sampleValue(first, "cityedge_detect_frames_total", street)!);
    expect(second.get("cityedge_inference_seconds")!.type).toBe("histogram");
    const perModel = { model: "yolox_nano", provider: "cpu" };
    expect(sampleValue(second, "cityedge_inference_seconds_count", perModel)).toBeGreaterThan(
      sampleValue(first, "cityedge_inference_seconds_count", perModel)!,
    );
    expect(sampleValue(second, "cityedge_inference_seconds_bucket", { ...perModel, le: "+Inf" })).toBe(
      sampleValue(second, "cityedge_inference_seconds_count", perModel),
    );
  });

  it("rejects an update whose sha256 is wrong, and the old model keeps running", async () => {
    const res = await command("update_model", update("u-bad-sha", { model: "yolox_nano", url: `${filesUrl}/updated.onnx`, sha256: "0".repeat(64) }));
    expect(res.payload).toMatchObject({ request_id: "u-bad-sha", ok: false, error: { code: "rejected" } });
    expect((res.payload.error as { message: string }).message).toBe(
      `sha256 mismatch: expected ${"0".repeat(64)}, downloaded ${sha(updated)}; the running model is unchanged`,
    );
    expect((await detector()).model_version).toBe("shipped");
    await runsAdvance();
  });

  it("restores the previous model when the new one fails to load, or loads but cannot run", async () => {
    const broken = served.get("/broken.onnx")!;
    const res = await command("update_model", update("u-broken", { model: "yolox_nano", url: `${filesUrl}/broken.onnx`, sha256: sha(broken) }));
    expect(res.payload).toMatchObject({ ok: false, error: { code: "rejected" } });
    expect((res.payload.error as { message: string }).message).toMatch(
      /^the new model failed to load or run \(.+\); rolled back to the shipped model$/,
    );
    const lstm = served.get("/lstm.onnx")!;
    const res2 = await command("update_model", update("u-lstm", { model: "yolox_nano", url: `${filesUrl}/lstm.onnx`, sha256: sha(lstm) }));
    expect((res2.payload.error as { message: string }).message).toMatch(/failed its check run: input 'history' is missing in 'feeds'/);
    expect((await detector()).model_version).toBe("shipped");
    await runsAdvance();
    expect(existsSync(path.join(dir, "data/models/yolox_nano/versions", `${sha(broken)}.onnx`))).toBe(false);
  });

  it("swaps in a good model without stopping detection, and keeps it across a restart", async () => {
    const res = await command("update_model", update("u-good", { model: "yolox_nano", url: `${filesUrl}/updated.onnx`, sha256: sha(updated) }));
    expect(res.payload).toMatchObject({
      request_id: "u-good",
      ok: true,
      result: { model: "yolox_nano", sha256: sha(updated), bytes: updated.length, provider: "cpu", previous_sha256: null },
    });
    expect((await detector()).model_version).toBe(sha(updated));
    await runsAdvance();
    const state = JSON.parse(readFileSync(path.join(dir, "data/models/yolox_nano/state.json"), "utf8")) as { current: { sha256: string } };
    expect(state.current.sha256).toBe(sha(updated));

    await daemon.stop();
    daemon = DaemonProcess.cli(configFile, { CITYEDGE_SHARED_DATA: shared! }).start();
    const after = await until(
      "the detector back after the restart",
      async () => {
        const d = (await health()).parts["detector:yolox_nano"];
        return d && (d.runs ?? 0) > 0 ? d : undefined;
      },
      120_000,
      250,
    );
    expect(after.model_version).toBe(sha(updated));
  });

  it("snapshot answers a JPEG at the camera's own resolution, with the boxes of that frame when asked", async () => {
    const res = await command("snapshot", { id: "s1", camera: "street", quality: 70 });
    expect(res.payload).toMatchObject({ request_id: "s1", ok: true, result: { camera: "street", content_type: "image/jpeg", resolution: "camera" } });
    const r = res.payload.result as { jpeg_base64: string; width: number; height: number };
    const meta = await sharp(Buffer.from(r.jpeg_base64, "base64")).metadata();
    expect(meta.format).toBe("jpeg");
    // The 640x352 clip itself, not the 416x229 picture the model sees.
    expect([meta.width, meta.height]).toEqual([640, 352]);
    expect([r.width, r.height]).toEqual([640, 352]);
    const boxed = await command("snapshot", { id: "s2", camera: "street", boxes: true });
    const b = boxed.payload.result as { jpeg_base64: string; frame_index: number; boxes: number; boxes_frame_index?: number };
    expect(boxed.payload).toMatchObject({ ok: true, result: { resolution: "camera", width: 640, height: 352 } });
    // Street traffic: YOLOX-Nano finds cars on the frame pictured (or the one detection took nearest to it).
    expect(b.boxes).toBeGreaterThan(0);
    expect(Math.abs(b.boxes_frame_index! - b.frame_index)).toBeLessThanOrEqual(30);
    expect((await sharp(Buffer.from(b.jpeg_base64, "base64")).metadata()).width).toBe(640);
  });

  it("restart_pipeline restarts one camera and frames flow again", async () => {
    const before = (await health()).parts["camera:street"]!.restarts ?? 0;
    const res = await command("restart_pipeline", { id: "r1", camera: "street" });
    expect(res.payload).toMatchObject({ request_id: "r1", ok: true, result: { camera: "street", restarted: true } });
    expect((await health()).parts["camera:street"]!.restarts).toBe(before + 1);
    await runsAdvance();
  });

  it("rolls back a model that passes its check run but fails on real frames", async () => {
    const narrow = served.get("/narrow.onnx")!;
    const res = await command("update_model", update("u-narrow", { model: "yolox_nano", url: `${filesUrl}/narrow.onnx`, sha256: sha(narrow) }));
    expect(res.payload).toMatchObject({ request_id: "u-narrow", ok: false, error: { code: "rejected" } });
    expect((res.payload.error as { message: string }).message).toMatch(
      new RegExp(
        `^the new model failed to run \\(\\d+ runs? on real frames failed: .*6 values per box.*\\); rolled back to version ${sha(updated)}$`,
      ),
    );
    expect((await detector()).model_version).toBe(sha(updated));
    await runsAdvance();
    const state = JSON.parse(readFileSync(path.join(dir, "data/models/yolox_nano/state.json"), "utf8")) as { current: { sha256: string } };
    expect(state.current.sha256).toBe(sha(updated));
  });
});
