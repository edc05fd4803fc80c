import { describe, expect, it } from "vitest";
import { calendarFeature, localTime, localTimes } from "../runtime/forecast/calendar.js";
import { fillGaps, stepValues } from "../runtime/forecast/window.js";
import type { Bucket } from "../runtime/history/historyStore.js";

const STEP = 1_800_000;
const T0 = Date.UTC(2026, 0, 5); // a Monday
const opts = { from: T0, steps: 10, stepMs: STEP, maxGapSteps: 2, maxMissingRatio: 0.3 };
const bucket = (i: number, sum: number, n: number, last: number): Bucket => ({ start: T0 + i * STEP, n, sum, first: 0, firstTs: 0, last, lastTs: 0 });

describe("forecast windows", () => {
  it("makes one value per step: mean, sum, or the rise of a counter since the step before", () => {
    const buckets = [bucket(-1, 0, 1, 100), bucket(0, 30, 3, 110), bucket(1, 8, 2, 125), bucket(3, 5, 1, 130)];
    const o = { from: T0, steps: 4, stepMs: STEP };
    expect(stepValues(buckets, { ...o, aggregate: "mean" })).toEqual([10, 4, Number.NaN, 5]);
    expect(stepValues(buckets, { ...o, aggregate: "sum" })).toEqual([30, 8, Number.NaN, 5]);
    // step 3 has no previous step: its rise is unknown, not the whole counter
    expect(stepValues(buckets, { ...o, aggregate: "delta" })).toEqual([10, 15, Number.NaN, Number.NaN]);
  });

  it("fills a short gap linearly and the edges with the nearest value", () => {
    const r = fillGaps([Number.NaN, 1, 2, Number.NaN, Number.NaN, 5, 6, 7, 8, Number.NaN], { ...opts, maxMissingRatio: 0.4 });
    expect(r).toEqual({ ok: true, values: [1, 1, 2, 3, 4, 5, 6, 7, 8, 8], filled: 4, longestGap: 2 });
  });

  it("keeps negative values (export) as they are", () => {
    const r = fillGaps([-3, Number.NaN, -1, 0, 1, 2, 3, 4, 5, 6], opts);
    expect(r.ok && r.values.slice(0, 3)).toEqual([-3, -2, -1]);
  });

  it("refuses a gap longer than max_gap_steps, naming it", () => {
    const r = fillGaps([1, Number.NaN, Number.NaN, Number.NaN, 5, 6, 7, 8, 9, 10], opts);
    expect(r).toEqual({
      ok: false,
      reason: "a gap of 3 steps (1.5 h) from 2026-01-05T00:30:00.000Z is longer than max_gap_steps 2",
      missing: 3,
      longestGap: 3,
    });
  });

  it("refuses a window with too much missing in total", () => {
    const r = fillGaps([1, Number.NaN, 3, Number.NaN, 5, Number.NaN, 7, Number.NaN, 9, 10], opts);
    expect(r).toEqual({ ok: false, reason: "4 of 10 steps (2.0 h) are missing, more than max_missing_ratio 0.3", missing: 4, longestGap: 1 });
  });

  it("refuses an empty window", () => {
    const r = fillGaps(Array<number>(10).fill(Number.NaN), opts);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe("no history in the window 2026-01-05T00:00:00.000Z .. 2026-01-05T05:00:00.000Z");
  });
});

describe("calendar features on the local clock", () => {
  it("uses the time zone's wall clock, summer time included", () => {
    // 2000-06-05 was a Monday; 23:30 UTC is 00:30 on Tuesday in London (BST)
    const t = Date.UTC(2000, 5, 5, 23, 30);
    expect(localTime(t, "UTC")).toEqual({ minuteOfDay: 23 * 60 + 30, weekday: 0 });
    expect(localTime(t, "Europe/London")).toEqual({ minuteOfDay: 30, weekday: 1 });
    // in winter London is UTC
    expect(localTime(Date.UTC(2000, 0, 8, 12), "Europe/London")).toEqual({ minuteOfDay: 720, weekday: 5 });
  });

  it("works out a whole window's local times the same way, across a clock change too", () => {
    for (const [tz, from] of [
      ["Europe/London", Date.UTC(2026, 2, 25)], // BST starts 2026-03-29 01:00 UTC
      ["America/New_York", Date.UTC(2026, 10, 1) - 3 * 86_400_000], // EST from 2026-11-01
      ["Asia/Kolkata", Date.UTC(2026, 5, 1)], // +05:30, no clock change
    ] as const) {
      const fast = localTimes(from, 384, 1_800_000, tz);
      const slow = Array.from({ length: 384 }, (_, r) => localTime(from + r * 1_800_000, tz));
      expect(fast).toEqual(slow);
    }
  });

  it("computes the features the model was trained on", () => {
    const sat6 = { minuteOfDay: 360, weekday: 5 };
    expect(calendarFeature("sin_time_of_day", sat6)).toBeCloseTo(1, 12);
    expect(calendarFeature("cos_time_of_day", sat6)).toBeCloseTo(0, 12);
    expect(calendarFeature("sin_day_of_week", sat6)).toBeCloseTo(Math.sin((10 * Math.PI) / 7), 12);
    expect(calendarFeature("is_weekend", sat6)).toBe(1);
    expect(calendarFeature("is_weekend", { minuteOfDay: 0, weekday: 4 })).toBe(0);
  });
});
