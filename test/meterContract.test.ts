import { spawn, fork, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import mqtt from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMeterDriver } from "../drivers/meter/createDriver.js";
import { meterKind, METER_KINDS } from "../drivers/meter/kinds.js";
import type { MeterDriver, Reading } from "../drivers/meter/meter.js";
import { readingPayload } from "../runtime/meters/metersPart.js";
import { RtuLines } from "../drivers/meter/rtuLine.js";
import { METER_SCHEMA } from "../runtime/config/sections/meters.js";
import { ModbusServerProcess } from "./helpers/modbusServerProcess.js";
import { Mosquitto } from "./helpers/mosquitto.js";
import { ReadingCollector } from "./helpers/readingCollector.js";
import { validateMessage } from "./helpers/schemas.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

const log = pino({ level: "silent" });
const SOCAT = ["/usr/bin/socat", "/bin/socat"].find((p) => existsSync(p));
const QUALITIES = ["good", "timeout", "exception", "nan", "out_of_range", "stale", "error"];

const killChild = async (c: ChildProcess | undefined): Promise<void> => {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once("exit", () => r()));
  c.kill("SIGKILL");
  await gone;
};

/** Every kind of meter behind the one interface, each against a real counterpart. */
describe("MeterDriver contract, for every driver", () => {
  let dir: string;
  let modbus: ModbusServerProcess;
  let broker: Mosquitto;
  let publisher: mqtt.MqttClient;
  let publishTimer: NodeJS.Timeout | undefined;
  let socat: ChildProcess | undefined;
  let rtuServer: ChildProcess | undefined;
  const lines = new RtuLines(log);
  const configs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-contract-"));
    modbus = await ModbusServerProcess.start();
    broker = await new Mosquitto().start();
    publisher = await mqtt.connectAsync(broker.url);
    publishTimer = setInterval(() => void publisher.publishAsync("meters/x/state", JSON.stringify({ p: 12.5 })), 100);
    const csv = path.join(dir, "r.csv");
    writeFileSync(
      csv,
      `timestamp,p\n${Array.from({ length: 50 }, (_, i) => `${new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString()},${i}`).join("\n")}\n`,
    );
    configs.push(
      { driver: "modbus-tcp", id: "c-tcp", host: "127.0.0.1", port: modbus.port, preset: "generic", interval_ms: 100, timeout_ms: 500 },
      { driver: "mqtt", id: "c-mqtt", url: broker.url, topic: "meters/x/state", values: { power_w: { path: "p", unit: "W" } } },
      { driver: "replay", id: "c-replay", file: csv, values: { power_w: { column: "p", unit: "W" } }, speed: 600 },
      { driver: "simulated", id: "c-sim", interval_ms: 60_000, speed: 600 },
    );
    if (SOCAT) {
      const a = path.join(dir, "a");
      const b = path.join(dir, "b");
      socat = spawn(SOCAT, [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: "ignore" });
      const deadline = Date.now() + 15_000;
      while (!(existsSync(a) && existsSync(b)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      rtuServer = fork(path.join(REPO_ROOT, "test/fixtures/modbusRtuServer.ts"), [a, "0"], {
        execArgv: ["--import", "tsx"],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      await new Promise<void>((resolve) => rtuServer!.on("message", (m: { ready?: boolean }) => m.ready && resolve()));
      configs.push({ driver: "modbus-rtu", id: "c-rtu", path: b, baud_rate: 38400, preset: "generic", interval_ms: 100, timeout_ms: 500 });
    }
  });
  afterAll(async () => {
    clearInterval(publishTimer);
    await publisher?.endAsync();
    await lines.closeAll();
    await killChild(rtuServer);
    await killChild(socat);
    await modbus?.kill();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const DRIVERS = ["modbus-tcp", "modbus-rtu", "mqtt", "replay", "simulated"] as const;

  it("runs for every registered kind of meter", () => {
    expect([...DRIVERS].sort()).toEqual(METER_KINDS.map((k) => k.driver).sort());
  });

  for (const kind of DRIVERS) {
    it(`${kind}: delivers well-formed readings with the meter's id, valid as a payload, and is silent after stop()`, async (ctx) => {
      const raw = configs.find((c) => c.driver === kind);
      if (!raw) ctx.skip();
      const cfg = METER_SCHEMA.parse(raw);
      const driver: MeterDriver = createMeterDriver(cfg, { log, baseDir: dir, rtuLines: lines });
      expect(driver.id).toBe(cfg.id);
      const c = new ReadingCollector();
      await driver.start(c.listener);
      try {
        const r: Reading = await c.next((x) => !x.backfill, 30_000);
        expect(r.meterId).toBe(cfg.id);
        expect(Number.isFinite(r.ts)).toBe(true);
        expect(Object.keys(r.values).length).toBeGreaterThan(0);
        for (const v of Object.values(r.values)) {
          expect(QUALITIES).toContain(v.quality);
          expect(typeof v.unit).toBe("string");
          expect(v.quality === "good" ? typeof v.value === "number" : true).toBe(true);
        }
        expect(Object.values(r.values).some((v) => v.quality === "good")).toBe(true);
        // What the kind says of its values (forecast units, source checks) is what it reports.
        const declared = meterKind(cfg.driver).values(cfg as never);
        for (const [name, v] of Object.entries(r.values)) expect([name, v.unit]).toEqual([name, declared[name]]);
        const envelope = { v: 1, id: "00000000-0000-4000-8000-000000000000", device_id: "dev", ts: new Date().toISOString(), epoch: "e-1", seq: 1 };
        validateMessage(`cityedge/dev/meters/${cfg.id}/readings`, { ...envelope, ...readingPayload(r) });
        expect(typeof driver.health().state).toBe("string");
      } finally {
        await driver.stop();
      }
      const after = c.readings.length;
      await new Promise((res) => setTimeout(res, 500));
      expect(c.readings.length).toBe(after);
    });
  }
});
