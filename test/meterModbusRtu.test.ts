import { spawn, fork, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModbusRtuMeter } from "../drivers/meter/modbusRtu.js";
import { RtuLines } from "../drivers/meter/rtuLine.js";
import { METER_SCHEMA, type ModbusRtuMeterConfig } from "../runtime/config/sections/meters.js";
import { ReadingCollector } from "./helpers/readingCollector.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

const log = pino({ level: "silent" });
const SOCAT = ["/usr/bin/socat", "/bin/socat"].find((p) => existsSync(p));

async function until(what: string, pred: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const kill = async (c: ChildProcess | undefined): Promise<void> => {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once("exit", () => r()));
  c.kill("SIGKILL");
  await gone;
};

// Modbus RTU over a pseudo-terminal pair (socat): the real serial stack, without RS-485 hardware.
describe.skipIf(!SOCAT)("Modbus RTU meters sharing one line (socat pty pair)", () => {
  let dir: string;
  let socat: ChildProcess | undefined;
  let server: ChildProcess | undefined;
  let lines: RtuLines;
  const meters: ModbusRtuMeter[] = [];
  let serverSide: string;
  let meterSide: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-rtu-"));
    serverSide = path.join(dir, "server");
    meterSide = path.join(dir, "meter");
    socat = spawn(SOCAT!, [`pty,raw,echo=0,link=${serverSide}`, `pty,raw,echo=0,link=${meterSide}`], { stdio: "ignore" });
    await until("socat's ptys", () => existsSync(serverSide) && existsSync(meterSide));
    server = fork(path.join(REPO_ROOT, "test/fixtures/modbusRtuServer.ts"), [serverSide, "40"], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    await new Promise<void>((resolve, reject) => {
      server!.once("exit", (code) => reject(new Error(`rtu server exited with ${code}`)));
      server!.on("message", (m: { ready?: boolean }) => m.ready && resolve());
    });
    lines = new RtuLines(log);
  });
  afterAll(async () => {
    for (const m of meters) await m.stop();
    await lines?.closeAll();
    await kill(server);
    await kill(socat);
    rmSync(dir, { recursive: true, force: true });
  });

  it("polls two meters on the line one at a time, each with its own unit id and values", async () => {
    const cfg = (id: string, unit: number) =>
      METER_SCHEMA.parse({
        driver: "modbus-rtu",
        id,
        path: meterSide,
        baud_rate: 38400,
        unit_id: unit,
        interval_ms: 200,
        timeout_ms: 1000,
        retries: 0,
        registers: [
          { name: "a", function: "holding", address: 0, type: "uint16" },
          { name: "b", function: "holding", address: 1, type: "uint16" },
        ],
      }) as ModbusRtuMeterConfig;
    const c1 = new ReadingCollector();
    const c2 = new ReadingCollector();
    const m1 = new ModbusRtuMeter(cfg("rtu-1", 1), lines.get(cfg("rtu-1", 1)), log);
    const m2 = new ModbusRtuMeter(cfg("rtu-2", 2), lines.get(cfg("rtu-2", 2)), log);
    meters.push(m1, m2);
    await m1.start(c1.listener);
    await m2.start(c2.listener);
    // Both poll on the same 200 ms grid and each answer takes 40 ms: overlapping requests on the
    // line would garble each other. Five good readings in a row each shows they took turns.
    await until("5 readings from each meter", () => c1.readings.length >= 5 && c2.readings.length >= 5, 30_000);
    for (const r of [...c1.readings.slice(0, 5), ...c2.readings.slice(0, 5)]) expect(r.error).toBeUndefined();
    expect(c1.readings[0]!.values).toEqual({ a: { value: 100, unit: "", quality: "good" }, b: { value: 101, unit: "", quality: "good" } });
    expect(c2.readings[0]!.values).toEqual({ a: { value: 200, unit: "", quality: "good" }, b: { value: 201, unit: "", quality: "good" } });
  });

  it("refuses a second meter on the line with other serial settings", () => {
    expect(() => lines.get({ path: meterSide, baud_rate: 9600, parity: "even", data_bits: 8, stop_bits: 1 })).toThrow(
      `serial line ${meterSide}: meters on one line need the same settings (38400 none vs 9600 even)`,
    );
  });

  it("flags an error when the line's device is missing, without a crash", async () => {
    const cfg = METER_SCHEMA.parse({
      driver: "modbus-rtu",
      id: "ghost",
      path: path.join(dir, "no-such-tty"),
      interval_ms: 200,
      registers: [{ name: "a", function: "holding", address: 0, type: "uint16" }],
    }) as ModbusRtuMeterConfig;
    const c = new ReadingCollector();
    const m = new ModbusRtuMeter(cfg, lines.get(cfg), log);
    meters.push(m);
    await m.start(c.listener);
    const r = await c.next(() => true);
    expect(r.values.a).toEqual({ value: null, unit: "", quality: "error" });
    expect(r.error).toMatch(/cannot open serial line .*no-such-tty/);
  });
});
