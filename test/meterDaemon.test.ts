import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { ModbusServerProcess } from "./helpers/modbusServerProcess.js";
import { Mosquitto } from "./helpers/mosquitto.js";
import { validateMessage } from "./helpers/schemas.js";
import { assertNoGaps, Subscriber, type Received } from "./helpers/subscriber.js";

const f32 = (v: number): number[] => {
  const b = Buffer.alloc(4);
  b.writeFloatBE(v);
  return [b.readUInt16BE(0), b.readUInt16BE(2)];
};

describe("a Modbus meter through the daemon: readings on MQTT, an outage flagged and recovered", () => {
  let dir: string;
  let broker: Mosquitto;
  let modbus: ModbusServerProcess;
  let daemon: DaemonProcess;
  let sub: Subscriber;
  const TOPIC = "cityedge/meter-dev/meters/sdm-1/readings";

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-meter-daemon-"));
    broker = await new Mosquitto().start();
    modbus = await ModbusServerProcess.start();
    await modbus.set("input", 0x0000, f32(229.5));
    await modbus.set("input", 0x000c, f32(-1500.25));
    await modbus.set("input", 0x0046, f32(70));
    const file = path.join(dir, "cityedge.yaml");
    writeFileSync(
      file,
      YAML.stringify({
        device_id: "meter-dev",
        data_dir: path.join(dir, "data"),
        mqtt: { url: broker.url, reconnect_min_ms: 100, reconnect_max_ms: 1000 },
        outbox: { synchronous: "normal" },
        broker: { enabled: false },
        http: { enabled: false, health_publish_ms: 0 },
        meters: [
          {
            id: "sdm-1",
            driver: "modbus-tcp",
            host: "127.0.0.1",
            port: modbus.port,
            preset: "sdm120",
            interval_ms: 300,
            timeout_ms: 300,
            retries: 0,
            limits: { frequency_hz: { min: 45, max: 55 } },
          },
        ],
      }),
    );
    sub = await Subscriber.connect(broker.url, "cityedge/meter-dev/#");
    daemon = DaemonProcess.cli(file).start();
  });
  afterAll(async () => {
    await sub?.close();
    await daemon?.stop();
    await modbus?.kill();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const readings = (): Received[] => sub.messages.filter((m) => m.topic === TOPIC);
  const values = (m: Received) => m.payload.values as Record<string, { value: number | null; quality: string }>;

  it("publishes decoded readings with units and quality, valid against the schema", async () => {
    await sub.waitFor("a reading", () => readings().length > 0, 60_000);
    const r = readings()[0]!;
    validateMessage(r.topic, r.payload);
    expect(r.payload).toMatchObject({ meter_id: "sdm-1", quality: "partial", v: 1, device_id: "meter-dev" });
    expect(values(r).voltage_v).toEqual({ value: 229.5, unit: "V", quality: "good" });
    expect(values(r).power_w).toEqual({ value: -1500.25, unit: "W", quality: "good" });
    expect(values(r).frequency_hz).toEqual({ value: 70, unit: "Hz", quality: "out_of_range" });
  });

  it("flags the meter's outage in its readings and reads again after it restarts, without a gap in seq", async () => {
    const port = modbus.port;
    await modbus.kill();
    await sub.waitFor("a bad reading", () => readings().some((m) => m.payload.quality === "bad"), 30_000);
    const bad = readings().find((m) => m.payload.quality === "bad")!;
    validateMessage(bad.topic, bad.payload);
    expect(values(bad).power_w).toEqual({ value: null, unit: "W", quality: "error" });
    expect(bad.payload.error).toMatch(/ECONNREFUSED|closed|connect/i);
    modbus = await ModbusServerProcess.start(port);
    await modbus.set("input", 0x000c, f32(2000));
    await sub.waitFor("a good power reading after the restart", () => readings().some((m) => values(m).power_w?.value === 2000), 60_000);
    expect(daemon.running).toBe(true);
    const seqs = readings().map((m) => m.payload.seq as number);
    assertNoGaps(sub.messages, TOPIC, Math.min(...seqs), Math.max(...seqs));
  });
});
