import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseCsvTime } from "../drivers/meter/csv.js";
import { MetersPart } from "../runtime/meters/metersPart.js";
import { utcOffsetMs } from "../runtime/forecast/calendar.js";
import { ReplayMeter } from "../drivers/meter/replay.js";
import { loadShape, SimulatedMeter } from "../drivers/meter/simulated.js";
import { METER_SCHEMA, type ReplayMeterConfig, type SimulatedMeterConfig } from "../runtime/config/sections/meters.js";
import { HistoryRecorder } from "../runtime/history/historyRecorder.js";
import { HistoryStore } from "../runtime/history/historyStore.js";
import type { MessageSink } from "../runtime/mqtt/sink.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { busInto } from "./helpers/bus.js";
import { ReadingCollector } from "./helpers/readingCollector.js";

const log = pino({ level: "silent" });
const MIN = 60_000;
const T0 = Date.UTC(2026, 2, 2, 8); // Monday 08:00 UTC

describe("replay and simulated meters", () => {
  let dir: string;
  let csv: string;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-replay-"));
    csv = path.join(dir, "m.csv");
    const rows = Array.from(
      { length: 10 },
      (_, i) => `${new Date(T0 + i * MIN).toISOString().slice(0, 19)},${i === 5 ? "" : (i * 1.5).toFixed(1)},${-i}`,
    );
    writeFileSync(csv, `timestamp,kw,net\n${rows.join("\n")}\n`);
  });
  afterEach(async () => {
    for (const s of stops.splice(0)) await s();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const replay = (over: Record<string, unknown>) =>
    METER_SCHEMA.parse({
      driver: "replay",
      id: "r1",
      file: csv,
      values: { power_kw: { column: "kw", unit: "kW" }, net_kw: { column: "net", unit: "kW" } },
      ...over,
    }) as ReplayMeterConfig;
  const start = async (m: ReplayMeter | SimulatedMeter) => {
    const c = new ReadingCollector();
    await m.start(c.listener);
    stops.push(() => m.stop());
    return c;
  };

  it("replays a CSV time-accelerated: back-fill first, then rows in order with their own timestamps", async () => {
    const c = await start(new ReplayMeter(replay({ backfill_s: 180, speed: 600 }), csv, log));
    expect(c.readings.filter((r) => r.backfill).map((r) => r.ts)).toEqual([T0, T0 + MIN, T0 + 2 * MIN]);
    await c.next((r) => r.ts === T0 + 9 * MIN, 30_000);
    expect(c.readings.map((r) => r.ts)).toEqual(Array.from({ length: 10 }, (_, i) => T0 + i * MIN));
    expect(c.readings[3]!.backfill).toBeUndefined();
    expect(c.readings[4]!.values).toEqual({
      power_kw: { value: 6, unit: "kW", quality: "good" },
      net_kw: { value: -4, unit: "kW", quality: "good" },
    });
    // an empty cell is flagged, not turned into 0
    expect(c.readings[5]!.values.power_kw).toEqual({ value: null, unit: "kW", quality: "nan" });
  });

  it("aligns to now and loops with rising timestamps", async () => {
    const before = Date.now();
    const c = await start(new ReplayMeter(replay({ backfill_s: 120, speed: 1200, align: "now", loop: true }), csv, log));
    const live = await c.next((r) => !r.backfill);
    expect(live.ts).toBeGreaterThanOrEqual(before);
    expect(live.ts).toBeLessThan(Date.now() + 1000);
    await c.next((r) => r.ts > live.ts + 12 * MIN, 30_000);
    const ts = c.readings.map((r) => r.ts);
    expect(ts.every((t, i) => i === 0 || t > ts[i - 1]!)).toBe(true);
  });

  it("reads local-clock timestamps in the configured time zone, and explicit offsets as they are", () => {
    const london = (t: number) => utcOffsetMs(t, "Europe/London");
    expect(new Date(parseCsvTime("2000-06-05T00:00:00", london)).toISOString()).toBe("2000-06-04T23:00:00.000Z");
    expect(new Date(parseCsvTime("2000-01-05 12:30", london)).toISOString()).toBe("2000-01-05T12:30:00.000Z");
    expect(new Date(parseCsvTime("2026-03-29T03:00:00", london)).toISOString()).toBe("2026-03-29T02:00:00.000Z");
    expect(new Date(parseCsvTime("2000-06-05T00:00:00+02:00", london)).toISOString()).toBe("2000-06-04T22:00:00.000Z");
    expect(new Date(parseCsvTime("2000-06-05T00:00:00")).toISOString()).toBe("2000-06-05T00:00:00.000Z");
  });

  it("names the problem in a bad file", async () => {
    const bad = path.join(dir, "bad.csv");
    writeFileSync(bad, "timestamp,kw,net\nyesterday,1,2\n");
    await expect(new ReplayMeter(replay({ file: bad }), bad, log).start(() => undefined)).rejects.toThrow(
      `${bad}:2: timestamp "yesterday" is not ISO 8601`,
    );
    await expect(new ReplayMeter(replay({ values: { p: { column: "watts" } } }), csv, log).start(() => undefined)).rejects.toThrow(
      `meter "r1": value "p" column "watts" is not in ${csv} (columns: timestamp, kw, net)`,
    );
  });

  it("simulates a repeatable daily load shape with a rising energy counter", async () => {
    const cfg = METER_SCHEMA.parse({
      driver: "simulated",
      id: "s1",
      interval_ms: 15 * MIN,
      backfill_s: 7 * 86_400,
      speed: 1,
    }) as SimulatedMeterConfig;
    const a = await start(new SimulatedMeter(cfg, log));
    const b = await start(new SimulatedMeter(cfg, log));
    const back = a.readings.filter((r) => r.backfill);
    expect(back).toHaveLength(7 * 96);
    expect(b.readings.filter((r) => r.backfill).map((r) => r.values)).toEqual(back.map((r) => r.values));
    const p = back.map((r) => r.values.power_kw!.value!);
    expect(Math.min(...p)).toBeGreaterThan(20);
    expect(Math.max(...p)).toBeLessThan(150);
    const e = back.map((r) => r.values.energy_kwh!.value!);
    expect(e.every((v, i) => i === 0 || v >= e[i - 1]!)).toBe(true);
    // weekday evening peak above the small hours
    expect(loadShape(Date.UTC(2026, 2, 3, 18, 30))).toBeGreaterThan(3 * loadShape(Date.UTC(2026, 2, 3, 3)));
  });

  it("publishes live readings through the bus and the outbox feed, and the recorder keeps every value (back-fill too) in history", async () => {
    const published: { topic: string; body: Record<string, unknown> }[] = [];
    const sink: MessageSink = { publish: (topic, body) => void published.push({ topic, body }) };
    const history = new HistoryStore({ file: path.join(dir, "h.sqlite"), rawRetentionMs: 86_400_000 * 30, retentionMs: 86_400_000 * 30, log });
    await history.start();
    stops.push(() => history.stop());
    const bus = busInto(sink, new Topics("cityedge", "dev"));
    const recorder = new HistoryRecorder({ bus, store: history, countsOf: [], log });
    await recorder.start();
    stops.unshift(() => recorder.stop());
    const part = new MetersPart({ meters: [replay({ backfill_s: 180, speed: 600 })], bus, baseDir: dir, log });
    await part.start();
    stops.unshift(() => part.stop());
    const deadline = Date.now() + 30_000;
    while (published.length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(published).toHaveLength(7);
    expect(published[0]).toEqual({
      topic: "cityedge/dev/meters/r1/readings",
      body: {
        meter_id: "r1",
        measured_at: new Date(T0 + 3 * MIN).toISOString(),
        quality: "good",
        values: { power_kw: { value: 4.5, unit: "kW", quality: "good" }, net_kw: { value: -3, unit: "kW", quality: "good" } },
      },
    });
    expect(published[2]!.body.quality).toBe("partial");
    expect(history.raw("meter:r1:power_kw", 0, Infinity).map((r) => r.quality)).toEqual([
      "good",
      "good",
      "good",
      "good",
      "good",
      "nan",
      "good",
      "good",
      "good",
      "good",
    ]);
    expect(part.health()).toMatchObject({ meters: { r1: { readings: 7 } } });
  });
});
