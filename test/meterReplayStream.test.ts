import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { once } from "node:events";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Reading } from "../drivers/meter/meter.js";
import { ReplayMeter } from "../drivers/meter/replay.js";
import { METER_SCHEMA, type ReplayMeterConfig } from "../runtime/config/sections/meters.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2020, 0, 1);
const ROWS = 3 * 366 * 24; // three years, hourly

async function writeCsv(file: string, rows: number, bad?: number, stepMs = HOUR): Promise<void> {
  const out = createWriteStream(file);
  out.write("timestamp,kw\n");
  for (let i = 0; i < rows; i++) {
    const stamp = i === bad ? "not-a-time" : new Date(T0 + i * stepMs).toISOString();
    if (!out.write(`${stamp},${(i % 24) + 0.5}\n`)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

const cfg = (file: string, over: Record<string, unknown>): ReplayMeterConfig =>
  METER_SCHEMA.parse({ id: "long", driver: "replay", file, values: { power_kw: { column: "kw", unit: "kW" } }, ...over }) as ReplayMeterConfig;

describe("replay streams long files", () => {
  let dir: string;
  let csv: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-replay-long-"));
    csv = path.join(dir, "long.csv");
    await writeCsv(csv, ROWS);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("back-fills more than 400 days of a three-year file, in order, reading ahead only a few thousand rows", async () => {
    expect(METER_SCHEMA.safeParse({ id: "x", driver: "replay", file: csv, values: {}, backfill_s: 1000 * 86_400 }).success).toBe(true);
    const got: Reading[] = [];
    const m = new ReplayMeter(cfg(csv, { backfill_s: 1000 * 86_400, speed: 3600 }), csv, pino({ level: "silent" }));
    await m.start((r) => got.push(r));
    try {
      const back = got.filter((r) => r.backfill);
      expect(back).toHaveLength(1000 * 24);
      expect(back[0]!.ts).toBe(T0);
      expect(back.at(-1)!.ts).toBe(T0 + (1000 * 24 - 1) * HOUR);
      expect(back.every((r, i) => r.ts === T0 + i * HOUR && r.values.power_kw!.value === (i % 24) + 0.5)).toBe(true);
      // the rest of the file is not in memory: only what is read ahead of the clock
      const h = m.health() as unknown as { rows_read: number };
      expect(h.rows_read).toBeLessThan(1000 * 24 + 5000);
      expect(h.rows_read).toBeLessThan(ROWS);
      // live rows follow at one hour per wall-clock second
      const deadline = Date.now() + 10_000;
      while (!got.some((r) => !r.backfill) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(got.find((r) => !r.backfill)!.ts).toBe(T0 + 1000 * DAY);
    } finally {
      await m.stop();
    }
  });

  it("stops at a bad row past the back-fill and says which line, in health and the log", async () => {
    const bad = path.join(dir, "bad.csv");
    await writeCsv(bad, 30_000, 28_000, 1000);
    const lines: string[] = [];
    const log = pino({ level: "error" }, { write: (l: string) => void lines.push(l) });
    const got: Reading[] = [];
    const m = new ReplayMeter(cfg(bad, { backfill_s: 20_000, speed: 1e6 }), bad, log);
    await m.start((r) => got.push(r));
    try {
      const deadline = Date.now() + 20_000;
      while ((m.health() as { state: string }).state !== "failed" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(m.health()).toMatchObject({ state: "failed", error: `${bad}:28002: timestamp "not-a-time" is not ISO 8601` });
      // the rows before it are still replayed
      while (got.at(-1)!.ts < T0 + 27_999 * 1000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(got.at(-1)!.ts).toBe(T0 + 27_999 * 1000);
      expect(lines.some((l) => l.includes(`replay stopped: ${bad}:28002`))).toBe(true);
    } finally {
      await m.stop();
    }
  });
});
