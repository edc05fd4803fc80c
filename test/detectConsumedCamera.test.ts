import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../bench/benchProcess.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { get, until } from "./helpers/http.js";
import { Mosquitto } from "./helpers/mosquitto.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

interface PartHealth {
  state: string;
  error?: string;
  waiting_for_consumer_ms?: number;
  frames_out?: number;
  runs?: number;
}

/**
 * A recording read only as fast as detection consumes it (read_as_consumed) whose detector
 * cannot start: the camera must say it waits for its consumer, the detector must say why it
 * failed and be retried, and once the model is mended frames flow again without a restart.
 */
describe("a camera read as consumed whose detector failed", () => {
  let dir: string;
  let broker: Mosquitto;
  let daemon: DaemonProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-consumed-"));
    broker = new Mosquitto();
    await broker.start();
  });
  afterAll(async () => {
    await daemon?.kill("SIGKILL");
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is reported, its detector retried, and frames flow once the model is mended", async () => {
    // The vehicles model, its manifest pointing at a copy of the file that is damaged for now.
    const shipped = path.join(REPO_ROOT, "models/vehicles");
    const manifest = JSON.parse(readFileSync(path.join(shipped, "manifest.json"), "utf8")) as { variants: Record<string, unknown> };
    const fp32 = manifest.variants.fp32 as { file: string; sha256: string };
    manifest.variants = { fp32: { file: path.join(dir, "model.onnx"), sha256: fp32.sha256 } };
    writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(manifest));
    writeFileSync(path.join(dir, "model.onnx"), "damaged");
    const port = await freePort();
    const config = writeMqttConfig(dir, broker.url, {
      http: { enabled: true, port, health_publish_ms: 0 },
      supervision: { initial_ms: 500, max_ms: 2000 },
      cameras: [
        {
          id: "recording",
          url: `file://${path.join(REPO_ROOT, "models/synthetic/demo.mp4")}`,
          fps: 10,
          loop: true,
          realtime: false,
          read_as_consumed: true,
          stall_timeout_ms: 1000,
          model: "vehicles",
        },
      ],
      models: [{ id: "vehicles", manifest: path.join(dir, "manifest.json"), providers: ["cpu"], threads: 1 }],
    });
    daemon = DaemonProcess.cli(config).start();
    const health = async () => (JSON.parse((await get(`http://127.0.0.1:${port}/healthz`)).body) as { parts: Record<string, PartHealth> }).parts;

    // The camera says it is waiting, and why; the detector says what is wrong with its model.
    const waiting = await until(
      "the camera to report its wait",
      async () => {
        const p = await health();
        return (p["camera:recording"]?.waiting_for_consumer_ms ?? 0) > 1000 ? p : undefined;
      },
      60_000,
    );
    expect(waiting["camera:recording"]).toMatchObject({ state: "degraded" });
    expect(waiting["camera:recording"]!.error).toMatch(
      /^no frame taken for \d+ s: this file is read only as detection consumes it \(read_as_consumed\), and its detector takes none/,
    );
    expect(waiting["detector:vehicles"]!.state).toMatch(/retrying|failed/);
    expect(waiting["detector:vehicles"]!.error).toContain("sha256 mismatch");
    await daemon.waitForLog(/no frame taken for \d+ s: this file is read only as detection consumes it/, 10_000);

    // Mended: the next retry loads it, and the same camera run goes on (no ffmpeg restart needed).
    copyFileSync(path.join(shipped, fp32.file), path.join(dir, "model.onnx"));
    const flowing = await until(
      "frames to flow through detection",
      async () => {
        const p = await health();
        return (p["detector:vehicles"]?.runs ?? 0) > 5 && p["camera:recording"]?.state === "running" ? p : undefined;
      },
      60_000,
    );
    expect(flowing["camera:recording"]!.waiting_for_consumer_ms).toBeUndefined();
    await daemon.waitForLog(/detection takes frames again/, 10_000);
    expect(await daemon.kill("SIGTERM")).toBe(0);
  }, 150_000);
});
