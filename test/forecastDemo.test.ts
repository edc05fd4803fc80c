import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { freePort } from "./helpers/mosquitto.js";
import { validateMessage } from "./helpers/schemas.js";
import { REPO_ROOT } from "./helpers/sharedData.js";
import { Subscriber } from "./helpers/subscriber.js";

// `npm start`'s config, as shipped, on free ports (cameras off: their suites cover them).
describe("the demo config publishes meter readings and forecasts", () => {
  let dir: string;
  let daemon: DaemonProcess;
  let sub: Subscriber | undefined;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-demo-"));
    port = await freePort();
    daemon = DaemonProcess.cli(path.join(REPO_ROOT, "config/demo.yaml"), {
      CITYEDGE__DATA_DIR: path.join(dir, "data"),
      CITYEDGE__BROKER__PORT: String(port),
      CITYEDGE__MQTT__URL: `mqtt://127.0.0.1:${port}`,
      CITYEDGE__HTTP__ENABLED: "false",
      CITYEDGE__LIVE_VIEW__ENABLED: "false",
      CITYEDGE__CAMERAS: "[]",
    }).start();
    // Subscribed before the meter starts: its back-fill makes the first forecast at once.
    await daemon.waitForLog(/embedded MQTT broker listening/, 60_000);
    sub = await Subscriber.connect(`mqtt://127.0.0.1:${port}`, "cityedge/demo-junction-01/#");
    await daemon.waitForLog(/simulated meter started/, 60_000);
  });
  afterAll(async () => {
    await sub?.close();
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("readings every second and a day-ahead forecast every 30 s, each valid against its schema", async () => {
    const forecasts = () => sub!.messages.filter((m) => m.topic === "cityedge/demo-junction-01/forecasts/feeder-1-power");
    const readings = () => sub!.messages.filter((m) => m.topic === "cityedge/demo-junction-01/meters/feeder-1/readings");
    await sub!.waitFor("3 readings and a forecast", () => readings().length >= 3 && forecasts().length >= 1, 60_000);
    for (const m of [...readings().slice(0, 3), forecasts()[0]!]) validateMessage(m.topic, m.payload);
    const f = forecasts()[0]!.payload as {
      horizon: { value: number; p10?: number; p50?: number; p90?: number }[];
      unit: string;
      model: { id: string };
      choice: { candidate: string; backtest: { mae: number; naive: Record<string, { mae: number }> } | null };
    };
    expect(f.unit).toBe("kW");
    // the model's id, or the built-in forecaster the feeder's own 9 days chose
    expect(f.model.id).toBe(f.choice.candidate === "model" ? "cityedge-demand-lstm" : f.choice.candidate);
    if (f.choice.backtest) {
      expect(f.choice.backtest.mae).toBeLessThanOrEqual(Math.min(...Object.values(f.choice.backtest.naive).map((n) => n.mae)));
      for (const h of f.horizon) expect(h.p10!).toBeLessThanOrEqual(h.p90!);
    }
    // the feeder runs between 40 and 120 kW: a sane forecast stays near that range
    for (const h of f.horizon) expect(h.value).toBeGreaterThan(0);
    for (const h of f.horizon) expect(h.value).toBeLessThan(250);
  });
});
