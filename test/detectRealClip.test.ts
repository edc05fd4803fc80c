import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./helpers/cli.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { Mosquitto } from "./helpers/mosquitto.js";
import { REPO_ROOT, sharedDataDir } from "./helpers/sharedData.js";
import { Subscriber } from "./helpers/subscriber.js";

/** Our by-eye labels of the real clip: which vehicle crosses the line, which way, when. */
interface Labels {
  video: string;
  lines: { id: string; from: [number, number]; to: [number, number] }[];
  crossings: { line: string; direction: "in" | "out"; label: string }[];
  vehicles_crossing: number;
}
const LABELS = JSON.parse(readFileSync(path.join(REPO_ROOT, "test/fixtures/detect/street-traffic-640x352.crossings.json"), "utf8")) as Labels;
const VEHICLES = ["car", "truck", "bus", "motorcycle", "bicycle"];
const data = sharedDataDir();
const clip = data ? path.join(data, LABELS.video) : undefined;
const MANIFEST = path.join(REPO_ROOT, "models/yolox_nano/manifest.json");
const line = LABELS.lines[0]!;

type Counts = Record<string, { in: number; out: number }>;
/** Vehicles counted each way, whatever class the detector gave them (a pickup is car or truck). */
const vehicles = (c: Counts) =>
  Object.entries(c)
    .filter(([label]) => VEHICLES.includes(label))
    .reduce((t, [, v]) => ({ in: t.in + v.in, out: t.out + v.out }), { in: 0, out: 0 });
const truthIn = LABELS.crossings.filter((c) => c.direction === "in").length;
const truthOut = LABELS.crossings.filter((c) => c.direction === "out").length;

describe.skipIf(!clip)("YOLOX-Nano counts the real clip within one of our labels", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-realclip-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("through cityedge detect (every frame, --json)", async () => {
    const r = await runCli([
      "detect",
      "--model",
      MANIFEST,
      clip!,
      "--providers",
      "cpu",
      "--classes",
      [...VEHICLES, "person"].join(","),
      "--line",
      `${line.from.join(",")},${line.to.join(",")},${line.id}`,
      "--json",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { v: number; kind: string; frames: number; fps: number; lines: { line_id: string; counts: Counts }[] };
    expect(out).toMatchObject({ v: 1, kind: "video", frames: 905 });
    const c = vehicles(out.lines.find((l) => l.line_id === line.id)!.counts);
    console.log(`cityedge detect, YOLOX-Nano, every frame: in ${c.in} out ${c.out} (labels: in ${truthIn} out ${truthOut}), ${out.fps} fps`);
    expect(Math.abs(c.in - truthIn)).toBeLessThanOrEqual(1);
    expect(Math.abs(c.out - truthOut)).toBeLessThanOrEqual(1);
  }, 300_000);

  it("through the daemon (file camera read as consumed, 10 fps, counts over MQTT)", async () => {
    const broker = new Mosquitto();
    await broker.start();
    let daemon: DaemonProcess | undefined;
    let sub: Subscriber | undefined;
    try {
      const config = writeMqttConfig(dir, broker.url, {
        cameras: [
          {
            id: "street",
            url: `file://${clip}`,
            fps: 10,
            loop: false,
            realtime: false,
            read_as_consumed: true,
            model: "yolox",
            detection: { classes: [...VEHICLES, "person"], lines: [line], counts_interval_s: 2 },
          },
        ],
        models: [{ id: "yolox", manifest: MANIFEST, providers: ["cpu"], threads: 2 }],
      });
      sub = await Subscriber.connect(broker.url, "cityedge/dev-1/cameras/street/counts");
      daemon = DaemonProcess.cli(config).start();
      await daemon.waitForLog(/camera source ended/, 240_000);
      // After the end, an interval with no frame: the last frame was counted and published.
      await sub.waitFor("a counts interval after the end with no frames", (m) => m.some((x) => x.payload.frames === 0), 30_000);
      const sum: Counts = {};
      for (const m of sub.messages) {
        for (const l of m.payload.lines as { line_id: string; counts: Counts }[]) {
          for (const [label, v] of Object.entries(l.counts)) {
            sum[label] = { in: (sum[label]?.in ?? 0) + v.in, out: (sum[label]?.out ?? 0) + v.out };
          }
        }
      }
      const c = vehicles(sum);
      console.log(`daemon, YOLOX-Nano, 10 fps: in ${c.in} out ${c.out} (labels: in ${truthIn} out ${truthOut}); ${JSON.stringify(sum)}`);
      expect(Math.abs(c.in - truthIn)).toBeLessThanOrEqual(1);
      expect(Math.abs(c.out - truthOut)).toBeLessThanOrEqual(1);
    } finally {
      await sub?.close();
      await daemon?.kill("SIGTERM");
      await broker.stop();
    }
  }, 300_000);
});
