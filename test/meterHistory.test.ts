import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HistoryStore } from "../runtime/history/historyStore.js";

const log = pino({ level: "silent" });
const STEP = 60_000;
const T0 = Date.UTC(2026, 0, 1);

describe("history store (a real SQLite file)", () => {
  let dir: string;
  let store: HistoryStore | undefined;
  const open = async (over: Partial<ConstructorParameters<typeof HistoryStore>[0]> = {}) => {
    store = new HistoryStore({
      file: path.join(dir, "history.sqlite"),
      rawRetentionMs: 3_600_000,
      retentionMs: 86_400_000,
      log,
      flushIntervalMs: 60_000,
      ...over,
    });
    await store.start();
    return store;
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-history-"));
  });
  afterEach(async () => {
    await store?.stop();
    store = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it("downsamples good readings to the step: count, sum, first and last; bad ones stay out", async () => {
    const s = await open();
    s.track("meter:m:p", STEP);
    s.record("meter:m:p", T0 + 1000, 10, "good");
    s.record("meter:m:p", T0 + 2000, 999, "out_of_range");
    s.record("meter:m:p", T0 + 3000, null, "timeout");
    s.record("meter:m:p", T0 + 4000, -20, "good");
    s.record("meter:m:p", T0 + STEP + 5, 7, "good");
    expect(s.buckets("meter:m:p", STEP, T0, T0 + 2 * STEP)).toEqual([
      { start: T0, n: 2, sum: -10, first: 10, firstTs: T0 + 1000, last: -20, lastTs: T0 + 4000 },
      { start: T0 + STEP, n: 1, sum: 7, first: 7, firstTs: T0 + STEP + 5, last: 7, lastTs: T0 + STEP + 5 },
    ]);
    expect(s.raw("meter:m:p", T0, T0 + STEP).map((r) => r.quality)).toEqual(["good", "out_of_range", "timeout", "good"]);
    // the watermark follows every reading, bad ones too: time passed
    expect(s.watermark("meter:m:p")).toBe(T0 + STEP + 5);
  });

  it("builds a new step's buckets from the raw readings it still has", async () => {
    const s = await open();
    for (let i = 0; i < 6; i++) s.record("meter:m:p", T0 + i * 20_000, i, "good");
    s.flush();
    s.track("meter:m:p", 2 * STEP);
    expect(s.buckets("meter:m:p", 2 * STEP, T0, T0 + 4 * STEP)).toEqual([
      { start: T0, n: 6, sum: 15, first: 0, firstTs: T0, last: 5, lastTs: T0 + 100_000 },
    ]);
  });

  it("keeps history and watermarks across a restart", async () => {
    let s = await open();
    s.track("meter:m:p", STEP);
    s.record("meter:m:p", T0 + 10, 5, "good");
    await s.stop();
    s = await open();
    s.track("meter:m:p", STEP);
    expect(s.watermark("meter:m:p")).toBe(T0 + 10);
    expect(s.buckets("meter:m:p", STEP, T0, T0 + STEP)).toHaveLength(1);
  });

  it("prunes past retention on each series' own clock", async () => {
    const s = await open({ rawRetentionMs: 2 * STEP, retentionMs: 5 * STEP });
    s.track("meter:m:p", STEP);
    for (let i = 0; i < 10; i++) s.record("meter:m:p", T0 + i * STEP, i, "good");
    s.prune();
    expect(s.raw("meter:m:p", 0, T0 + 100 * STEP).map((r) => r.value)).toEqual([7, 8, 9]);
    expect(s.buckets("meter:m:p", STEP, 0, T0 + 100 * STEP).map((b) => b.sum)).toEqual([4, 5, 6, 7, 8, 9]);
  });

  it("forgets the series of one meter, and only those", async () => {
    const s = await open();
    s.track("meter:m1:p", STEP);
    s.track("meter:m10:p", STEP);
    s.record("meter:m1:p", T0, 1, "good");
    s.record("meter:m1:q", T0, 1, "good");
    s.record("meter:m10:p", T0, 1, "good");
    expect(s.forget("meter:m1:")).toBeGreaterThan(0);
    expect(s.watermark("meter:m1:p")).toBeUndefined();
    expect(s.raw("meter:m1:p", 0, Infinity)).toEqual([]);
    expect(s.buckets("meter:m1:p", STEP, 0, Infinity)).toEqual([]);
    expect(s.raw("meter:m10:p", 0, Infinity)).toHaveLength(1);
    expect(s.buckets("meter:m10:p", STEP, 0, Infinity)).toHaveLength(1);
  });

  it("keeps no raw readings when raw retention is 0, but still the buckets", async () => {
    const s = await open({ rawRetentionMs: 0 });
    s.track("meter:m:p", STEP);
    s.record("meter:m:p", T0, 1, "good");
    expect(s.raw("meter:m:p", 0, T0 + STEP)).toEqual([]);
    expect(s.buckets("meter:m:p", STEP, T0, T0 + STEP)).toHaveLength(1);
  });
});
