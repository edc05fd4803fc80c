import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import mqtt from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Camera } from "../drivers/camera/camera.js";
import { resolveFfmpeg } from "../drivers/camera/ffmpegBinary.js";
import { loadConfig } from "../runtime/config/load.js";
import { Daemon } from "../runtime/daemon.js";
import { DetectorPart } from "../runtime/detect/detectorPart.js";
import { SecretScrubber } from "../runtime/log/logger.js";
import type { MqttPublisher } from "../runtime/mqtt/publisher.js";
import type { Part } from "../runtime/part.js";
import { waitFor } from "./helpers/camera.js";
import { spawnCli, type CliProcess } from "./helpers/cli.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { captureLogger, makeConstModel, writeManifest } from "./helpers/detectModels.js";
import { get, until } from "./helpers/http.js";
import { freePort, MOSQUITTO_BIN, Mosquitto } from "./helpers/mosquitto.js";
import { Subscriber } from "./helpers/subscriber.js";

let dir: string;
let clip: string;
let manifest: string;
let broker: Mosquitto;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-reload-"));
  // A small real clip for the file cameras: 10 s of a moving test pattern.
  clip = path.join(dir, "clip.mp4");
  execFileSync(resolveFfmpeg().path, [
    "-hide_banner",
    "-loglevel",
    "error",
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=96x64:rate=10",
    "-t",
    "10",
    "-pix_fmt",
    "yuv420p",
    clip,
  ]);
  // A real ONNX model (one car box per frame) with its manifest.
  const model = makeConstModel(dir, "boxes", { batch: "N", width: 32, height: 32, shape: [1, 6, 1], values: [16, 16, 8, 8, 0.9, 0.1] });
  manifest = writeManifest(dir, "boxes", model, "yolov8", { width: 32, height: 32 }, ["car", "person"]);
  if (MOSQUITTO_BIN) broker = await new Mosquitto().start();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function camera(id: string, lineY: number): Record<string, unknown> {
  return {
    id,
    url: `file://${clip}`,
    fps: 5,
    model: "boxes",
    detection: { counts_interval_s: 1, lines: [{ id: `line-${lineY}`, from: [0, lineY], to: [1, lineY] }] },
  };
}

function config(sub: string, cameras: Record<string, unknown>[], extra: Record<string, unknown> = {}): string {
  const d = path.join(dir, sub);
  rmSync(d, { recursive: true, force: true });
  execFileSync("mkdir", ["-p", d]);
  return writeMqttConfig(d, broker.url, {
    device_id: `reload-${sub}`,
    models: [{ id: "boxes", manifest, providers: ["cpu"], threads: 1, instances: 1 }],
    cameras,
    ...extra,
  });
}

function daemonOn(file: string): Daemon {
  const loaded = loadConfig(file, {});
  const { log } = captureLogger();
  const daemon = new Daemon({ configFile: file, loaded, log, scrubber: new SecretScrubber(), env: {} });
  cleanups.push(() => daemon.stop());
  return daemon;
}

const partsOf = (d: Daemon): Map<string, Part> =>
  new Map(["outbox", "mqtt", "camera:a", "camera:b", "detector:boxes", "pipeline:a", "pipeline:b"].map((n) => [n, d.parts.get(n)!]));

describe.skipIf(!MOSQUITTO_BIN)("reload by difference on the real daemon", () => {
  it("a reload that changes one camera's counting line restarts that camera's pipeline only", async () => {
    const file = config("one-camera", [camera("a", 0.5), camera("b", 0.5)]);
    const sub = await Subscriber.connect(broker.url, "cityedge/reload-one-camera/#");
    cleanups.push(() => sub.close());
    const daemon = daemonOn(file);
    await daemon.start();
    const counts = (id: string) => sub.on(`cityedge/reload-one-camera/cameras/${id}/counts`);
    await sub.waitFor("counts of both cameras", () => counts("a").length > 0 && counts("b").length > 0);
    const before = partsOf(daemon);
    const detector = before.get("detector:boxes") as DetectorPart;
    const pids = { a: (before.get("camera:a") as Camera).pid, b: (before.get("camera:b") as Camera).pid };
    const session = detector.session;
    const reconnects = (daemon.parts.get("mqtt") as MqttPublisher).health().reconnects;

    writeMqttConfig(path.dirname(file), broker.url, {
      device_id: "reload-one-camera",
      models: [{ id: "boxes", manifest, providers: ["cpu"], threads: 1, instances: 1 }],
      cameras: [camera("a", 0.25), camera("b", 0.5)],
    });
    const result = await daemon.reload();
    console.info(`reload of one camera's line: ${JSON.stringify(result)}`);
    expect(result).toMatchObject({ outcome: "applied", restarted: ["pipeline:a"], started: [], stopped: [], in_place: [] });
    if (result.outcome !== "applied") throw new Error("not applied");
    expect(result.kept).toEqual(expect.arrayContaining(["outbox", "mqtt", "camera:a", "camera:b", "detector:boxes", "pipeline:b", "commands"]));

    // The very same objects run on: the detector and its session, both ffmpegs, the MQTT link.
    const after = partsOf(daemon);
    for (const name of ["outbox", "mqtt", "camera:a", "camera:b", "detector:boxes", "pipeline:b"])
      expect(after.get(name), name).toBe(before.get(name));
    expect(after.get("pipeline:a")).not.toBe(before.get("pipeline:a"));
    expect(detector.session).toBe(session);
    expect({ a: (after.get("camera:a") as Camera).pid, b: (after.get("camera:b") as Camera).pid }).toEqual(pids);
    expect((daemon.parts.get("mqtt") as MqttPublisher).health().reconnects).toBe(reconnects);
    expect((after.get("mqtt") as MqttPublisher).health()).toMatchObject({ state: "running" });

    // Camera a now counts on the new line, through the same detector; b goes on as before.
    const seenA = counts("a").length;
    const seenB = counts("b").length;
    await sub.waitFor("counts of a on the new line", () =>
      counts("a")
        .slice(seenA)
        .some((m) => (m.payload.lines as { line_id: string }[])[0]?.line_id === "line-0.25"),
    );
    await sub.waitFor("more counts of b", () => counts("b").length > seenB + 1);
    expect(counts("b").every((m) => (m.payload.lines as { line_id: string }[])[0]?.line_id === "line-0.5")).toBe(true);
    expect(detector.health()).toMatchObject({ state: "running", session_restarts: 0, cameras: { a: { frames: expect.any(Number) }, b: {} } });
  });

  it("a camera added or removed keeps its model's sessions when they stay as planned, and reopens them when the plan changes", async () => {
    const models = (instances: number | "auto") => [{ id: "boxes", manifest, providers: ["cpu"], threads: 2, instances }];
    const file = config("add-camera", [camera("a", 0.5)], { models: models(1) });
    const sub = await Subscriber.connect(broker.url, "cityedge/reload-add-camera/#");
    cleanups.push(() => sub.close());
    const daemon = daemonOn(file);
    await daemon.start();
    const counts = (id: string) => sub.on(`cityedge/reload-add-camera/cameras/${id}/counts`);
    await sub.waitFor("counts of a", () => counts("a").length > 0);
    const detector = daemon.parts.get("detector:boxes") as DetectorPart;
    const session = detector.session;
    const rewrite = (cameras: Record<string, unknown>[], instances: number | "auto") =>
      writeMqttConfig(path.dirname(file), broker.url, { device_id: "reload-add-camera", models: models(instances), cameras });

    // One instance asked for: a second camera changes nothing in how the sessions are opened.
    rewrite([camera("a", 0.5), camera("b", 0.5)], 1);
    const added = await daemon.reload();
    expect(added).toMatchObject({ outcome: "applied", restarted: [], stopped: [] });
    if (added.outcome !== "applied") throw new Error("not applied");
    expect(added.started).toEqual(expect.arrayContaining(["camera:b", "pipeline:b"]));
    expect(added.kept).toEqual(expect.arrayContaining(["detector:boxes", "camera:a", "pipeline:a"]));
    expect(daemon.parts.get("detector:boxes")).toBe(detector);
    expect(detector.session).toBe(session);
    await sub.waitFor("counts of the added camera", () => counts("b").length > 0);

    // And it goes again: its own parts stop, the rest runs on.
    rewrite([camera("a", 0.5)], 1);
    const removed = await daemon.reload();
    expect(removed).toMatchObject({ outcome: "applied", restarted: [], started: [] });
    if (removed.outcome !== "applied") throw new Error("not applied");
    expect(removed.stopped).toEqual(expect.arrayContaining(["camera:b", "pipeline:b"]));
    expect(daemon.parts.get("detector:boxes")).toBe(detector);
    expect(detector.session).toBe(session);

    // instances: auto runs one session per camera up to the threads: the second camera is a second session.
    rewrite([camera("a", 0.5)], "auto");
    await daemon.reload();
    const auto = daemon.parts.get("detector:boxes") as DetectorPart;
    rewrite([camera("a", 0.5), camera("b", 0.5)], "auto");
    const grown = await daemon.reload();
    expect(grown).toMatchObject({ outcome: "applied" });
    if (grown.outcome !== "applied") throw new Error("not applied");
    expect(grown.restarted).toContain("detector:boxes");
    expect(daemon.parts.get("detector:boxes")).not.toBe(auto);
    await sub.waitFor("counts of b on the reopened detector", () => counts("b").length > 1);
  });

  it("restarts a camera whose ffmpeg was missing at start, once it is there", async () => {
    const ffmpeg = path.join(dir, "later-ffmpeg");
    const file = config("late-ffmpeg", [{ id: "a", url: `file://${clip}`, fps: 5 }], {
      ffmpeg_path: ffmpeg,
      supervision: { initial_ms: 200, max_ms: 400 },
    });
    const daemon = daemonOn(file);
    await daemon.start();
    expect(daemon.health()["camera:a"]).toMatchObject({
      state: "retrying",
      error: `camera "a": ffmpeg_path "${ffmpeg}" is not an executable file`,
      supervisor: { restarts: 1, retry_at: expect.any(String) },
    });
    symlinkSync(resolveFfmpeg().path, ffmpeg);
    cleanups.push(() => existsSync(ffmpeg) && unlinkSync(ffmpeg));
    const cam = daemon.parts.get("camera:a") as Camera;
    await waitFor(() => cam.state === "streaming", "the camera streaming after its ffmpeg appeared", 30_000);
    expect(daemon.health()["camera:a"]).toMatchObject({ state: "running", supervisor: { restarts: expect.any(Number) } });
  });
});

describe.skipIf(!MOSQUITTO_BIN)("reloads that cannot leave a dead daemon (real CLI, real mosquitto)", () => {
  let daemon: CliProcess;
  let sub: Subscriber;
  let file: string;
  let httpPort: number;
  const BASE = "cityedge/reload-cli";

  async function command(id: string): Promise<Record<string, unknown>> {
    const topic = `${BASE}/cmd/reload_config/response`;
    const answered = () => sub.on(topic).find((m) => m.payload.request_id === id);
    const client = await mqtt.connectAsync(broker.url);
    cleanups.push(() => client.endAsync(true));
    // Re-sent until answered: a command published while the daemon is (re)subscribing is not delivered.
    for (let i = 0; i < 12 && !answered(); i++) {
      await client.publishAsync(`${BASE}/cmd/reload_config`, JSON.stringify({ id }), { qos: 1 });
      await sub.waitFor(`the answer to ${id}`, () => answered() !== undefined, 5000).catch(() => undefined);
    }
    return answered()!.payload;
  }

  const health = async () => JSON.parse((await get(`http://127.0.0.1:${httpPort}/healthz`)).body) as Record<string, unknown>;
  const write = (extra: Record<string, unknown> = {}) =>
    writeMqttConfig(path.join(dir, "cli"), broker.url, {
      device_id: "reload-cli",
      http: { enabled: true, host: "127.0.0.1", port: httpPort, health_publish_ms: 0 },
      // More reload_config requests a minute than the default 2 (its rate limit).
      commands: { rate_limits: { reload_config: 60 } },
      ...extra,
    });

  beforeAll(async () => {
    execFileSync("mkdir", ["-p", path.join(dir, "cli")]);
    httpPort = await freePort();
    file = write();
    sub = await Subscriber.connect(broker.url, `${BASE}/#`);
    daemon = spawnCli(["run", "--config", file]);
    await daemon.waitForLine(/"msg":"cityedge started"/);
    await until("healthz 200", async () => ((await get(`http://127.0.0.1:${httpPort}/healthz`)).status === 200 ? true : undefined));
  });

  afterAll(async () => {
    if (daemon && daemon.child.exitCode === null) {
      daemon.child.kill("SIGTERM");
      await daemon.exited;
    }
    await sub?.close();
  });

  it("rejects a data_dir under a regular file, on reload_config and on SIGHUP, and keeps every part running", async () => {
    writeFileSync(path.join(dir, "cli", "plain"), "a file, not a folder\n");
    write({ data_dir: path.join(dir, "cli", "plain", "data") });
    const answer = await command("dd-1");
    expect(answer).toMatchObject({
      ok: false,
      error: { code: "rejected", message: `${file} has 1 problem; still running on the previous config` },
    });
    expect((answer.error as { details: string[] }).details[0]).toMatch(/data_dir: cannot create .*plain\/data: ENOTDIR/);
    daemon.child.kill("SIGHUP");
    await daemon.waitForLine(/"msg":"SIGHUP reload rejected"/);
    const h = await health();
    expect(h.state).toBe("ok");
    expect(h.last_reload).toMatchObject({ outcome: "rejected", problems: [expect.stringMatching(/ENOTDIR/)] });
    expect(Object.values(h.parts as Record<string, { state: string }>).every((p) => p.state === "running")).toBe(true);
    expect(daemon.child.exitCode).toBeNull();
  });

  it("rolls back a config whose part fails to start (http port taken), answers with the failure, and serves on the old port", async () => {
    const taken = net.createServer();
    const busy = await freePort();
    await new Promise<void>((r) => taken.listen(busy, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise((r) => taken.close(r)));
    write({ http: { enabled: true, host: "127.0.0.1", port: busy, health_publish_ms: 0 } });
    const answer = await command("rb-1");
    expect(answer).toMatchObject({
      ok: false,
      error: { code: "failed", message: `${file}: http failed to start; rolled back, still running on the previous config` },
    });
    expect((answer.error as { details: string[] }).details).toEqual([`http: http: cannot listen on 127.0.0.1:${busy}: EADDRINUSE`]);
    const h = await health();
    expect(h.last_reload).toMatchObject({ outcome: "rolled_back", restarted: ["http"], failed: [{ part: "http" }] });
    expect(h.state).toBe("ok");
    expect(daemon.child.exitCode).toBeNull();
    // The file is fixed: applied, and answered with what it restarted.
    write({ log_level: "debug" });
    expect(await command("rb-2")).toMatchObject({ ok: true, result: { applied: true, restarted: [], in_place: ["log_level"] } });
  });
});
