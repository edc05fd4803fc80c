import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FORECAST_SCHEMA, type ForecastConfig } from "../runtime/config/sections/forecasts.js";
import { METER_SCHEMA, type MeterConfig } from "../runtime/config/sections/meters.js";
import { FORECASTS } from "../runtime/contract/index.js";
import { ForecastModel } from "../runtime/forecast/forecastModel.js";
import { ForecastScheduler } from "../runtime/forecast/scheduler.js";
import { HistoryStore } from "../runtime/history/historyStore.js";
import { sha256File } from "../runtime/inference/manifest.js";
import type { MessageSink } from "../runtime/mqtt/sink.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { REPO_ROOT } from "./helpers/sharedData.js";
import { busInto } from "./helpers/bus.js";

const FIXTURES = path.join(REPO_ROOT, "test/fixtures/forecast");
const HALF = 1_800_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 2, 2); // a Monday

/** Every log line as parsed JSON. */
function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString("utf8").split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: "debug" }, stream), lines };
}

async function manifest(dir: string, name: string, onnx: string, extra: Record<string, unknown> = {}): Promise<string> {
  const file = path.join(FIXTURES, onnx);
  const m = {
    id: name,
    version: "1",
    task: "forecast",
    variants: { fp32: { file, sha256: await sha256File(file) } },
    input: {
      name: "history",
      history_steps: 384,
      features: ["value", "sin_time_of_day", "cos_time_of_day", "sin_day_of_week", "cos_day_of_week", "is_weekend"],
    },
    output: { name: "forecast", horizon: 48 },
    step_seconds: 1800,
    normalization: { mean: 0, std: 1 },
    ...extra,
  };
  const out = path.join(dir, `${name}.json`);
  writeFileSync(out, JSON.stringify(m));
  return out;
}

const meter = (id: string, unit = "MW"): MeterConfig =>
  METER_SCHEMA.parse({ id, driver: "replay", file: "x.csv", values: { p: { column: "p", unit } } });
const forecast = (id: string, source: string, extra: Record<string, unknown> = {}): ForecastConfig =>
  FORECAST_SCHEMA.parse({ id, source, timezone: "UTC", ...extra });
const wobble = (t: number): number => shape(t) + 40 * Math.sin(t / 7e6);
const shape = (t: number): number => 1000 + 300 * Math.sin((2 * Math.PI * (t % DAY)) / DAY) + ((t / DAY) % 7 >= 5 ? -150 : 0);

describe("forecast failures are visible, in health and in the log, with the series named", () => {
  let dir: string;
  let store: HistoryStore;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-fcfail-"));
    store = new HistoryStore({ file: path.join(dir, "h.sqlite"), rawRetentionMs: 0, retentionMs: 90 * DAY, log: pino({ level: "silent" }) });
    await store.start();
  });
  afterAll(async () => {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(opts: {
    forecasts: ForecastConfig[];
    meters: MeterConfig[];
    models: Record<string, string>;
    feed: () => void;
    until: (published: Record<string, unknown>[], sched: ForecastScheduler) => boolean;
  }): Promise<{ published: Record<string, unknown>[]; health: Record<string, Record<string, unknown>>; lines: Record<string, unknown>[] }> {
    const { log, lines } = capture();
    const published: Record<string, unknown>[] = [];
    const sink: MessageSink = { publish: (_topic, body) => void published.push(body) };
    const sched = new ForecastScheduler({
      forecasts: opts.forecasts,
      meters: opts.meters,
      store,
      bus: busInto(sink, new Topics("cityedge", "dev")),
      log,
      loadModel: (id, modelLog) =>
        ForecastModel.load({ manifestFile: opts.models[id]!, providers: ["cpu"], threads: 1, variant: "fp32", log: modelLog }),
      tickMs: 20,
      batchWindowMs: 2000,
    });
    await sched.start();
    try {
      opts.feed();
      const deadline = Date.now() + 30_000;
      while (!opts.until(published, sched) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return { published, health: (sched.health() as unknown as { series: Record<string, Record<string, unknown>> }).series, lines };
    } finally {
      await sched.stop();
    }
  }

  /** Readings of `source` every `stepMs` over [from, to), then one at `to` that completes the last step. */
  const feed = (source: string, from: number, to: number, stepMs: number, f: (t: number) => number = shape) => {
    for (let t = from; t < to; t += stepMs) store.record(source, t, f(t), "good");
    store.record(source, to, f(to), "good");
  };

  it("runs a fixed-batch model one window at a time for two series, and each gets its own forecast", async () => {
    const m = await manifest(dir, "b1", "lastday_b1.onnx");
    const r = await run({
      forecasts: ["a", "b"].map((id) => forecast(`fb-${id}`, `meter:fb${id}:p`, { model: "b1", candidates: ["model"] })),
      meters: [meter("fba"), meter("fbb")],
      models: { b1: m },
      feed: () => {
        feed("meter:fba:p", T0, T0 + 8 * DAY, HALF);
        feed("meter:fbb:p", T0, T0 + 8 * DAY, HALF, (t) => shape(t) + 500);
      },
      until: (p) => p.length >= 2,
    });
    expect(r.published).toHaveLength(2);
    const fixed = r.lines.find((l) => l.model === "b1" && l.batch === 1 && String(l.msg).includes("fixed batch of 1"));
    expect(fixed?.series).toEqual(["fb-a", "fb-b"]);
    // every line about a series names it
    for (const l of r.lines.filter((x) => String(x.msg).includes("forecast fb-"))) expect(l.series).toBeDefined();
    for (const [id, shift] of [
      ["fb-a", 0],
      ["fb-b", 500],
    ] as const) {
      const p = r.published.find((x) => x.series_id === id)!;
      FORECASTS.body.parse(p);
      // the fixture model repeats the window's last day
      const values = (p.horizon as { value: number }[]).map((h) => h.value);
      values.forEach((v, k) => expect(v).toBeCloseTo(shape(T0 + 7 * DAY + k * HALF) + shift, 2));
      expect(r.health[id]).toMatchObject({ state: "running", candidate: "model", published: 1, errors: 0 });
    }
  });

  it("refuses a model whose history length or feature count does not fit, naming the model and its series; they run on the built-ins", async () => {
    const short = await manifest(dir, "short", "short_history.onnx");
    const five = await manifest(dir, "five", "five_features.onnx");
    const r = await run({
      forecasts: [
        forecast("sh-1", "meter:sh:p", { model: "short" }),
        forecast("sh-2", "meter:sh:p", { model: "short" }),
        forecast("ff", "meter:sh:p", { model: "five" }),
      ],
      meters: [meter("sh")],
      models: { short, five },
      feed: () => feed("meter:sh:p", T0, T0 + 8 * DAY, HALF),
      until: (p) => p.length >= 3,
    });
    expect(r.health["sh-1"]!.model_error).toMatch(
      /^model "short": model short \(.*short_history\.onnx\) does not fit its manifest: input "history" takes 100 history steps, the manifest's input.history_steps is 384$/,
    );
    expect(r.health.ff!.model_error).toContain('input "history" takes 5 features, the manifest lists 6');
    expect(r.health["sh-2"]).toMatchObject({ state: "degraded", published: 1 });
    const line = r.lines.find((l) => l.level === 50 && String(l.msg).startsWith('forecast series sh-1, sh-2: model "short"'));
    expect(line, JSON.stringify(r.lines.filter((l) => l.level === 50))).toBeDefined();
    expect(line!.series).toEqual(["sh-1", "sh-2"]);
    // the built-in forecaster the 8 days allow
    expect(r.published.find((p) => p.series_id === "sh-1")!.choice).toMatchObject({ candidate: "seasonal_naive_week", backtest: null });
  });

  it("counts a failing run against every series in it, with the model and the series in the error", async () => {
    const m = await manifest(dir, "fixed1", "lastday_reshape.onnx");
    const r = await run({
      forecasts: ["x", "y"].map((id) => forecast(`rs-${id}`, `meter:rs${id}:p`, { model: "fixed1", candidates: ["model"] })),
      meters: [meter("rsx"), meter("rsy")],
      models: { fixed1: m },
      feed: () => {
        feed("meter:rsx:p", T0, T0 + 8 * DAY, HALF);
        feed("meter:rsy:p", T0, T0 + 8 * DAY, HALF);
      },
      until: (_p, s) => Object.values((s.health() as unknown as { series: Record<string, { errors: number }> }).series).every((h) => h.errors > 0),
    });
    expect(r.published).toHaveLength(0);
    for (const id of ["rs-x", "rs-y"]) {
      expect(r.health[id]).toMatchObject({ state: "degraded", errors: 1 });
      expect(r.health[id]!.last_error).toMatch(/^series rs-x, rs-y: model fixed1: run of 2 windows failed: /);
      expect(r.lines.some((l) => l.series === id && l.level === 50 && String(l.msg).startsWith(`forecast ${id} failed: series rs-x, rs-y`))).toBe(
        true,
      );
    }
  });

  it("rescales a series in a foreign unit by its own window (with a warning), and refuses it when scaling: model is set", async () => {
    const m = await manifest(dir, "mw", "lastday_b1.onnx", {
      unit: "MW",
      value_range: { min: 18000, max: 39000 },
      normalization: { mean: 29000, std: 5000 },
    });
    const r = await run({
      forecasts: [
        forecast("kw-auto", "meter:kw:p", { model: "mw", candidates: ["model"] }),
        forecast("kw-model", "meter:kw:p", { model: "mw", candidates: ["model"], scaling: "model" }),
      ],
      meters: [meter("kw", "kW")],
      models: { mw: m },
      feed: () => feed("meter:kw:p", T0, T0 + 8 * DAY, HALF),
      until: (p, s) =>
        p.length >= 1 && ((s.health() as unknown as { series: Record<string, { skipped: number }> }).series["kw-model"]?.skipped ?? 0) >= 1,
    });
    expect(r.published.map((p) => p.series_id)).toEqual(["kw-auto"]);
    const warn = r.lines.find((l) => l.series === "kw-auto" && l.level === 40);
    expect(warn?.msg).toBe("forecast kw-auto: the series is in kW, model mw was trained in MW: normalised by the window's own mean and spread");
    // window scaling: the last day again, in kW
    (r.published[0]!.horizon as { value: number }[]).forEach((h, k) => expect(h.value).toBeCloseTo(shape(T0 + 7 * DAY + k * HALF), 1));
    expect(r.health["kw-model"]).toMatchObject({ skipped_by_reason: { scaling: 1 } });
    expect(r.health["kw-model"]!.last_skip_reason).toBe(
      "the series is in kW, model mw was trained in MW; scaling: model refuses it (use scaling: auto or window)",
    );
  });

  it("forecasts an hourly source hourly through a half-hourly model, and names the step a daily source cannot give the model", async () => {
    const m = await manifest(dir, "half", "lastday_b1.onnx");
    const r = await run({
      forecasts: [forecast("hourly", "meter:hr:p", { model: "half", candidates: ["model"] }), forecast("daily", "meter:dy:p", { model: "half" })],
      meters: [meter("hr"), meter("dy")],
      models: { half: m },
      feed: () => {
        feed("meter:hr:p", T0, T0 + 8 * DAY, HOUR);
        feed("meter:dy:p", T0 - 22 * DAY, T0 + 8 * DAY, DAY);
      },
      until: (p) => p.length >= 2,
    });
    expect(r.health.hourly).toMatchObject({ state: "running", step_s: 3600, source_step_s: 3600, horizon: 24 });
    const h = r.published.find((p) => p.series_id === "hourly")!;
    expect(h).toMatchObject({ step_s: 3600, source_step_s: 3600 });
    expect(h.horizon as unknown[]).toHaveLength(24);
    expect(r.health.daily).toMatchObject({ state: "degraded", step_s: 86_400, source_step_s: 86_400 });
    expect(r.health.daily!.model_error).toBe(
      "model half (step 30 min) cannot serve a 1 d series: the source's step (1 d) is 48x the forecast step (30 min); at most 4x is interpolated (max_interpolate)",
    );
    expect(r.lines.some((l) => l.series === "daily" && l.level === 40 && String(l.msg).includes("cannot serve a 1 d series"))).toBe(true);
    expect(r.published.find((p) => p.series_id === "daily")!.choice).toMatchObject({
      candidate: expect.stringMatching(/^(seasonal_naive_day|seasonal_naive_week|holt_winters|regression)$/),
    });
  });

  it("chooses by backtest with enough history, publishes intervals, keeps each forecast and its actual values for the charts", async () => {
    const r = await run({
      forecasts: [forecast("bt", "meter:bt:p", { step_s: 3600, backtest_days: 7, reselect_h: 2 })],
      meters: [meter("bt")],
      models: {},
      feed: () => feed("meter:bt:p", T0, T0 + 35 * DAY, HOUR, wobble),
      until: (p) => p.length >= 1,
    });
    const p = r.published[0]!;
    FORECASTS.body.parse(p);
    const choice = p.choice as { candidate: string; backtest: { mae: number; naive: Record<string, { mae: number }>; days: number } };
    expect(choice.backtest.days).toBe(7);
    expect(choice.backtest.mae).toBeLessThanOrEqual(Math.min(...Object.values(choice.backtest.naive).map((n) => n.mae)));
    for (const h of p.horizon as { value: number; p10: number; p50: number; p90: number }[]) {
      expect(h.p10).toBeLessThanOrEqual(h.p50);
      expect(h.p50).toBeLessThanOrEqual(h.p90);
    }
    expect(r.health.bt).toMatchObject({ candidate: choice.candidate, backtest: { mae: expect.any(Number), days: 7 } });
    const issued = Date.parse(p.issued_at as string);
    const kept = store.forecasts("bt", issued);
    expect(kept).toHaveLength(1);
    expect(kept[0]!.body).toEqual(p);
    // the actual values of the forecast's first steps, once read
    feed("meter:bt:p", T0 + 35 * DAY + HOUR, T0 + 36 * DAY, HOUR, wobble);
    expect((p.choice as { chosen_at: string }).chosen_at).toBe(p.issued_at);
    const actual = store.actuals("bt", issued, issued + 3 * HOUR);
    expect(actual).toEqual([0, 1, 2].map((k) => ({ ts: new Date(issued + k * HOUR).toISOString(), value: wobble(issued + k * HOUR) })));
  });

  it("keeps its choice between re-choices and chooses again every reselect_h hours of the series' clock", async () => {
    const end = T0 + 35 * DAY;
    let fed = 0;
    const r = await run({
      forecasts: [forecast("rc", "meter:rc:p", { step_s: 3600, backtest_days: 7, reselect_h: 2 })],
      meters: [meter("rc")],
      models: {},
      feed: () => feed("meter:rc:p", T0, end, HOUR, wobble),
      until: (p) => {
        // one more hour each time the last one was forecast
        if (p.length === fed + 1 && fed < 3) store.record("meter:rc:p", end + ++fed * HOUR, wobble(end + fed * HOUR), "good");
        return p.length >= 4;
      },
    });
    const chosen = r.published.map((p) => [p.issued_at, (p.choice as { chosen_at: string }).chosen_at]);
    const at = (h: number) => new Date(end + h * HOUR).toISOString();
    expect(chosen).toEqual([
      [at(0), at(0)],
      [at(1), at(0)],
      [at(2), at(2)],
      [at(3), at(2)],
    ]);
    expect(r.lines.filter((l) => l.series === "rc" && /^forecast rc: (chose|kept) /.test(String(l.msg)))).toHaveLength(2);
  });

  it("refuses a model that keeps tensors in a file its manifest does not cover with a sha256", async () => {
    const m = await manifest(dir, "ext", "external.onnx");
    await expect(
      ForecastModel.load({ manifestFile: m, providers: ["cpu"], threads: 1, variant: "fp32", log: pino({ level: "silent" }) }),
    ).rejects.toThrow(
      `model ext: ${path.join(FIXTURES, "external.onnx")} keeps tensors in external.onnx.data, which variants.fp32.external_data of ${m} does not list with a sha256; refused unchecked`,
    );
  });
});
