import { describe, expect, it } from "vitest";
import { cadence, downsample, measuredStep, stepsFromReadings, upsample } from "../runtime/forecast/resample.js";
import { decideScaling } from "../runtime/forecast/scaling.js";

const H = 3_600_000;

describe("resampling a source to the forecast step", () => {
  it("aggregates finer readings: mean, sum, or the counter's rise per step", () => {
    const t0 = Date.UTC(2026, 0, 5);
    const readings = [0, 10, 20, 40, 50, 65, 70].map((min, i) => ({ ts: t0 + min * 60_000, value: [1, 2, 3, 10, 11, 12, 20][i]! }));
    // 30-minute steps: [0, 30) holds 1, 2, 3; [30, 60) holds 10, 11; [60, 90) holds 12, 20
    expect(Array.from(stepsFromReadings(readings, t0, 1_800_000, 4, "mean"))).toEqual([2, 10.5, 16, Number.NaN]);
    expect(Array.from(stepsFromReadings(readings, t0, 1_800_000, 3, "sum"))).toEqual([6, 21, 32]);
    expect(Array.from(stepsFromReadings(readings, t0, 1_800_000, 3, "delta"))).toEqual([Number.NaN, 8, 9]);
    expect(Array.from(downsample([1, 3, 5, 7, 9, 11], 2, "mean"))).toEqual([2, 6, 10]);
    expect(Array.from(downsample([1, 3, 5, 7], 2, "sum"))).toEqual([4, 12]);
  });

  it("interpolates a coarser source smoothly, keeping each step's mean", () => {
    const hourly = [10, 20, 40, 40];
    const half = upsample(hourly, 2, "mean");
    expect(half.length).toBe(8);
    for (let i = 0; i < hourly.length; i++) expect((half[2 * i]! + half[2 * i + 1]!) / 2).toBeCloseTo(hourly[i]!, 12);
    // a rising series rises inside each hour too, and a flat stretch stays flat
    expect(half[0]!).toBeLessThan(half[1]!);
    expect(half[2]!).toBeLessThan(half[3]!);
    expect(half[6]).toBeCloseTo(40, 12);
    expect(half[7]).toBeCloseTo(40, 12);
  });

  it("spreads sums and counter rises so each step keeps its total, and leaves a missing step missing", () => {
    const counts = [12, 24, Number.NaN, 6];
    const q = upsample(counts, 4, "sum");
    expect(q.length).toBe(16);
    const total = (a: number) => q.slice(4 * a, 4 * a + 4).reduce((s, v) => s + v, 0);
    expect(total(0)).toBeCloseTo(12, 12);
    expect(total(1)).toBeCloseTo(24, 12);
    expect(Array.from(q.slice(8, 12)).every(Number.isNaN)).toBe(true);
    expect(total(3)).toBeCloseTo(6, 12);
    // where the shape would cross zero inside a step, its total is spread evenly
    const mixed = upsample([2, -20], 2, "delta");
    expect(Array.from(mixed.slice(0, 2))).toEqual([1, 1]);
    expect(mixed[2]! + mixed[3]!).toBeCloseTo(-20, 12);
  });

  it("measures the native step as the median spacing, and decides how a source serves a step", () => {
    expect(measuredStep([0, H, 2 * H, 3 * H, 5 * H, 6 * H, 6 * H + 1000])).toBe(H);
    expect(measuredStep([5])).toBeUndefined();
    expect(cadence(1000, 1_800_000, 4)).toEqual({ kind: "aggregate" });
    expect(cadence(H, 1_800_000, 4)).toEqual({ kind: "interpolate", factor: 2 });
    expect(cadence(86_400_000, 1_800_000, 4)).toEqual({
      kind: "refused",
      reason: "the source's step (1 d) is 48x the forecast step (30 min); at most 4x is interpolated (max_interpolate)",
    });
    expect(cadence(45 * 60_000, 1_800_000, 4)).toEqual({
      kind: "refused",
      reason: "the source's step (45 min) is not a whole number of forecast steps (30 min), so it cannot be interpolated",
    });
  });
});

describe("no silent garbage: the model's input scaling", () => {
  const spec = { id: "lstm", unit: "MW", valueRange: { min: 18640, max: 38777 } };
  it("uses the model's own normalisation only for its unit and near its training range", () => {
    expect(decideScaling("auto", spec, "MW", [20_000, 35_000])).toEqual({ scaling: "model" });
    expect(decideScaling("auto", spec, "MW", [1646, 3833])).toEqual({
      scaling: "window",
      warning:
        "the window's values (1646 .. 3833) lie far outside the range model lstm was trained on (18640 .. 38777 MW): normalised by the window's own mean and spread",
    });
    expect(decideScaling("auto", spec, "", [20_000])).toMatchObject({
      scaling: "window",
      warning: expect.stringContaining("the series' unit is not known"),
    });
    expect(decideScaling("model", spec, "MW", [1646, 3833])).toEqual({
      refused:
        "the window's values (1646 .. 3833) lie far outside the range model lstm was trained on (18640 .. 38777 MW); scaling: model refuses it (use scaling: auto or window)",
    });
    expect(decideScaling("window", spec, "kW", [1])).toEqual({ scaling: "window" });
  });
});
