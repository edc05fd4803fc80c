import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtspServer } from "./helpers/camera.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { Mosquitto } from "./helpers/mosquitto.js";
import { validateMessage } from "./helpers/schemas.js";
import { REPO_ROOT, sharedFile } from "./helpers/sharedData.js";
import { assertNoGaps, Subscriber } from "./helpers/subscriber.js";

const clip = sharedFile("video/street-traffic-640x352.mp4");

/**
 * The whole path with real parts: the real street clip served by a real RTSP server, the daemon
 * process (camera ffmpeg → YOLOX-Nano → tracker/counter → SQLite outbox → MQTT) and a real
 * mosquitto, watched by a cloud-side subscriber.
 */
describe.skipIf(!clip)("detection end to end: RTSP → daemon → mosquitto", () => {
  let dir: string;
  let rtsp: RtspServer;
  let broker: Mosquitto;
  let daemon: DaemonProcess | undefined;
  let sub: Subscriber | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-detect-e2e-"));
    rtsp = new RtspServer({ clip: clip! });
    broker = new Mosquitto();
    await Promise.all([rtsp.start(), broker.start()]);
  });

  afterAll(async () => {
    await sub?.close();
    await daemon?.kill("SIGKILL");
    await rtsp?.kill();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("publishes detections and counts of the real clip that validate against their schemas", async () => {
    const config = writeMqttConfig(dir, broker.url, {
      cameras: [
        {
          id: "junction-n",
          url: rtsp.url(),
          fps: 8,
          model: "yolox",
          detection: {
            classes: ["person", "car", "bus", "truck", "motorcycle", "bicycle"],
            // Across the road below the parked cars: cars coming towards the camera cross it.
            lines: [{ id: "road", from: [0.25, 0.55], to: [1.0, 0.55] }],
            zones: [
              {
                id: "near",
                polygon: [
                  [0.3, 0.45],
                  [1, 0.45],
                  [1, 1],
                  [0.3, 1],
                ],
              },
            ],
            counts_interval_s: 2,
          },
        },
      ],
      models: [
        { id: "yolox", manifest: path.join(REPO_ROOT, "models/yolox_nano/manifest.json"), providers: ["tensorrt", "cuda", "cpu"], threads: 2 },
      ],
    });
    sub = await Subscriber.connect(broker.url, "cityedge/dev-1/cameras/#");
    daemon = DaemonProcess.cli(config).start();
    await daemon.waitForLog(/provider tensorrt unavailable: [^"]+, falling back to cuda/, 60_000);
    await daemon.waitForLog(/provider cuda unavailable: [^"]+, falling back to cpu/, 60_000);
    await daemon.waitForLog(/"msg":"detector ready"/, 60_000);

    const detTopic = "cityedge/dev-1/cameras/junction-n/detections";
    const countTopic = "cityedge/dev-1/cameras/junction-n/counts";
    await sub.waitFor(
      "20 detections with a car and 2 counts",
      (m) =>
        m.filter((x) => x.topic === detTopic && JSON.stringify(x.payload).includes('"label":"car"')).length >= 20 &&
        m.filter((x) => x.topic === countTopic).length >= 2,
      120_000,
    );
    expect(await daemon.kill("SIGTERM")).toBe(0);

    for (const m of sub.messages) validateMessage(m.topic, m.payload);
    const dets = sub.on(detTopic);
    const counts = sub.on(countTopic);
    assertNoGaps(sub.messages, detTopic, 1, dets.length);
    assertNoGaps(sub.messages, countTopic, 1, counts.length);
    // The clip is 640x352; boxes come back normalized to it, and tracks get ids.
    expect(dets[0]!.payload).toMatchObject({ camera_id: "junction-n", model: "yolox", width: 640, height: 352 });
    const objects = dets.flatMap((d) => d.payload.objects as { label: string; track_id?: number; box: number[] }[]);
    expect(objects.some((o) => typeof o.track_id === "number")).toBe(true);
    expect(new Set(objects.map((o) => o.label)).has("car")).toBe(true);
    // Frame to subscriber: the envelope's ts is after the frame arrived, within reason.
    const lag = dets.map((d) => Date.parse(d.payload.ts as string) - Date.parse(d.payload.frame_ts as string));
    expect(Math.min(...lag)).toBeGreaterThanOrEqual(0);
    expect(counts.every((c) => (c.payload.frames as number) >= 0 && Array.isArray(c.payload.lines))).toBe(true);
    expect(counts.some((c) => (c.payload.road as { vehicles_present: number }).vehicles_present > 0)).toBe(true);
  });
});
