import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ModbusTcpMeter } from "../drivers/meter/modbusTcp.js";
import { METER_SCHEMA, type ModbusTcpMeterConfig } from "../runtime/config/sections/meters.js";
import { ModbusServerProcess } from "./helpers/modbusServerProcess.js";
import { ReadingCollector } from "./helpers/readingCollector.js";

const log = pino({ level: "silent" });

/** Known encodings, written out by hand so the test does not reuse the code it checks. */
const CASES = [
  { type: "int16", value: -2, big: [0xfffe] },
  { type: "uint16", value: 65535, big: [0xffff] },
  { type: "int32", value: -123456789, big: [0xf8a4, 0x32eb] },
  { type: "uint32", value: 4000000000, big: [0xee6b, 0x2800] },
  { type: "float32", value: -1.5, big: [0xbfc0, 0x0000] },
  { type: "float64", value: Math.PI, big: [0x4009, 0x21fb, 0x5444, 0x2d18] },
] as const;
const swap = (w: number) => ((w & 0xff) << 8) | (w >> 8);

describe("Modbus TCP meter against a real server process", () => {
  let server: ModbusServerProcess;
  const tcp = (over: Record<string, unknown>): ModbusTcpMeterConfig =>
    METER_SCHEMA.parse({
      driver: "modbus-tcp",
      id: "m1",
      host: "127.0.0.1",
      port: server.port,
      interval_ms: 200,
      timeout_ms: 300,
      retries: 0,
      ...over,
    }) as ModbusTcpMeterConfig;
  const drivers: ModbusTcpMeter[] = [];
  const run = async (cfg: ModbusTcpMeterConfig) => {
    const d = new ModbusTcpMeter(cfg, log);
    drivers.push(d);
    const c = new ReadingCollector();
    await d.start(c.listener);
    return c;
  };

  beforeAll(async () => {
    server = await ModbusServerProcess.start();
  });
  afterEach(async () => {
    for (const d of drivers.splice(0)) await d.stop();
    await server.clear();
  });
  afterAll(async () => {
    await server.kill();
  });

  it("decodes every data type in every word and byte order exactly", async () => {
    const registers: Record<string, unknown>[] = [];
    const expected: Record<string, number> = {};
    let address = 1000;
    for (const c of CASES) {
      for (const wo of ["big", "little"] as const) {
        for (const bo of ["big", "little"] as const) {
          const words = (wo === "big" ? [...c.big] : [...c.big].reverse()).map((w) => (bo === "big" ? w : swap(w)));
          const name = `${c.type}_${wo}_${bo}`;
          await server.set("holding", address, words);
          registers.push({ name, function: "holding", address, type: c.type, word_order: wo, byte_order: bo });
          expected[name] = c.type === "float32" ? Math.fround(c.value) : c.value;
          address += words.length + 1;
        }
      }
    }
    // scale and an input register too
    await server.set("input", 5, [1234]);
    registers.push({ name: "scaled", function: "input", address: 5, type: "uint16", scale: 0.1, unit: "V" });
    expected.scaled = 1234 * 0.1;
    const c = await run(tcp({ registers, max_block: 20 }));
    const r = await c.next((x) => Object.values(x.values).every((v) => v.quality === "good"));
    const got = Object.fromEntries(Object.entries(r.values).map(([k, v]) => [k, v.value]));
    expect(got).toEqual(expected);
    expect(r.values.scaled?.unit).toBe("V");
  });

  it("reads the SDM630 preset map; negative power (export) is good, out-of-range is flagged", async () => {
    const f32 = (v: number) => {
      const b = Buffer.alloc(4);
      b.writeFloatBE(v);
      return [b.readUInt16BE(0), b.readUInt16BE(2)];
    };
    await server.set("input", 0x0000, [...f32(231.5), ...f32(229.25), ...f32(240.125)]);
    await server.set("input", 0x0034, f32(-5200.5));
    await server.set("input", 0x0046, f32(49.98));
    await server.set("input", 0x0048, f32(123456.75));
    const c = await run(tcp({ preset: "sdm630", limits: { frequency_hz: { min: 45, max: 55 }, voltage_l3_v: { max: 235 } } }));
    const r = await c.next(() => true);
    expect(r.values.voltage_l1_v).toEqual({ value: 231.5, unit: "V", quality: "good" });
    expect(r.values.power_w).toEqual({ value: -5200.5, unit: "W", quality: "good" });
    expect(r.values.frequency_hz?.value).toBe(Math.fround(49.98));
    expect(r.values.import_energy_kwh?.value).toBe(123456.75);
    expect(r.values.voltage_l3_v).toEqual({ value: 240.125, unit: "V", quality: "out_of_range" });
    expect(Object.keys(r.values)).toHaveLength(15);
  });

  it("flags NaN values", async () => {
    await server.set("holding", 0, [0x7fc0, 0x0000]);
    const c = await run(tcp({ registers: [{ name: "p", function: "holding", address: 0, type: "float32" }] }));
    const r = await c.next(() => true);
    expect(r.values.p).toEqual({ value: null, unit: "", quality: "nan" });
  });

  it("flags a value frozen for stale_after_ms as stale", async () => {
    await server.set("holding", 0, [42]);
    const c = await run(tcp({ stale_after_ms: 1000, registers: [{ name: "p", function: "holding", address: 0, type: "uint16" }] }));
    const first = await c.next(() => true);
    expect(first.values.p?.quality).toBe("good");
    const stale = await c.next((r) => r.values.p?.quality === "stale");
    expect(stale.ts - first.ts).toBeGreaterThanOrEqual(1000);
    await server.set("holding", 0, [43]);
    const moved = await c.next((r) => r.values.p?.value === 43);
    expect(moved.values.p?.quality).toBe("good");
  });

  it("flags a timeout and recovers when the meter answers again", async () => {
    await server.set("holding", 0, [42]);
    const c = await run(tcp({ registers: [{ name: "p", function: "holding", address: 0, type: "uint16" }] }));
    await c.next((r) => r.values.p?.quality === "good");
    await server.delay(1000);
    const bad = await c.next((r) => r.values.p?.quality !== "good");
    expect(bad.values.p).toEqual({ value: null, unit: "", quality: "timeout" });
    expect(bad.error).toMatch(/timed out/i);
    await server.clear();
    const good = await c.next((r) => r.values.p?.quality === "good");
    expect(good.values.p?.value).toBe(42);
  });

  it("flags a wrong unit id (the server stays silent) as a timeout", async () => {
    await server.set("holding", 0, [42]);
    const c = await run(tcp({ unit_id: 9, registers: [{ name: "p", function: "holding", address: 0, type: "uint16" }] }));
    const r = await c.next(() => true);
    expect(r.values.p?.quality).toBe("timeout");
  });

  it("flags an exception response for the block it hits and keeps the other blocks good", async () => {
    await server.set("holding", 0, [7]);
    await server.set("input", 0, [8]);
    await server.exception("input", 0, 0, 2);
    const c = await run(
      tcp({
        registers: [
          { name: "a", function: "holding", address: 0, type: "uint16" },
          { name: "b", function: "input", address: 0, type: "uint16" },
        ],
      }),
    );
    const r = await c.next(() => true);
    expect(r.values.a).toEqual({ value: 7, unit: "", quality: "good" });
    expect(r.values.b).toEqual({ value: null, unit: "", quality: "exception" });
    expect(r.error).toMatch(/Modbus exception 2/);
  });

  it("survives a server restart: flags the outage, reconnects, reads again", async () => {
    const port = server.port;
    await server.set("holding", 0, [42]);
    const c = await run(tcp({ registers: [{ name: "p", function: "holding", address: 0, type: "uint16" }] }));
    await c.next((r) => r.values.p?.quality === "good");
    await server.kill();
    const bad = await c.next((r) => r.values.p?.quality === "error");
    expect(bad.values.p?.value).toBeNull();
    server = await ModbusServerProcess.start(port);
    await server.set("holding", 0, [43]);
    const good = await c.next((r) => r.values.p?.quality === "good", 45_000);
    expect(good.values.p?.value).toBe(43);
    expect(drivers[0]!.health().connected).toBe(true);
  });
});
