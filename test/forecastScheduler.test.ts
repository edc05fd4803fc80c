import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FORECAST_SCHEMA } from "../runtime/config/sections/forecasts.js";
import { METER_SCHEMA } from "../runtime/config/sections/meters.js";
import { ForecastModel, type WindowInput } from "../runtime/forecast/forecastModel.js";
import { ForecastScheduler } from "../runtime/forecast/scheduler.js";
import { HistoryStore } from "../runtime/history/historyStore.js";
import type { MessageSink } from "../runtime/mqtt/sink.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { REPO_ROOT } from "./helpers/sharedData.js";
import { busInto } from "./helpers/bus.js";

const log = pino({ level: "silent" });
const STEP = 1_800_000;
const ISSUE = Date.UTC(2026, 2, 9, 12); // the step that starts at this time is in progress

describe("forecast scheduler", () => {
  let dir: string;
  let store: HistoryStore;
  let model: ForecastModel;
  const batches: number[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-sched-"));
    store = new HistoryStore({ file: path.join(dir, "h.sqlite"), rawRetentionMs: 0, retentionMs: 30 * 86_400_000, log });
    await store.start();
    model = await ForecastModel.load({
      manifestFile: path.join(REPO_ROOT, "models/demand_lstm/manifest.json"),
      providers: ["cpu"],
      threads: 1,
      variant: "fp32",
      log,
    });
    const predict = model.predict.bind(model);
    model.predict = async (w: readonly WindowInput[]) => {
      batches.push(w.length);
      return predict(w);
    };
  });
  afterAll(async () => {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs every series due at the same step in one batch, skips the one with a day missing, and names the model", async () => {
    const meters = ["a", "b", "c", "d"].map((id) =>
      METER_SCHEMA.parse({ id, driver: "replay", file: "x.csv", values: { p: { column: "p", unit: "MW" } } }),
    );
    const forecasts = meters.map((m) => FORECAST_SCHEMA.parse({ id: `f-${m.id}`, source: `meter:${m.id}:p`, model: "lstm", timezone: "UTC" }));
    const published: { topic: string; body: Record<string, unknown>; v: number | undefined }[] = [];
    const sink: MessageSink = { publish: (topic, body, opts) => void published.push({ topic, body, v: opts?.v }) };
    const sched = new ForecastScheduler({
      forecasts,
      meters,
      store,
      bus: busInto(sink, new Topics("cityedge", "dev")),
      log,
      loadModel: async () => model,
      tickMs: 20,
      batchWindowMs: 5000,
    });
    await sched.start();
    try {
      // 8 days of half-hours; d lacks a whole day; the first reading of the step after ISSUE completes it
      for (const m of ["a", "b", "c", "d"]) {
        for (let r = 0; r < 384; r++) {
          const t = ISSUE - (384 - r) * STEP;
          if (m === "d" && r >= 100 && r < 148) continue;
          store.record(`meter:${m}:p`, t + 60_000, 30_000 + 5000 * Math.sin((2 * Math.PI * r) / 48) + (m === "b" ? 1000 : 0), "good");
        }
      }
      for (const m of ["a", "b", "c", "d"]) store.record(`meter:${m}:p`, ISSUE + 1000, 30_000, "good");
      const deadline = Date.now() + 30_000;
      while (published.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(batches).toEqual([3]);
      expect(published.map((p) => p.topic).sort()).toEqual([
        "cityedge/dev/forecasts/f-a",
        "cityedge/dev/forecasts/f-b",
        "cityedge/dev/forecasts/f-c",
      ]);
      const a = published.find((p) => p.body.series_id === "f-a")!;
      expect(a.v).toBe(2);
      expect(a.body).toMatchObject({
        issued_at: new Date(ISSUE).toISOString(),
        step_s: 1800,
        unit: "MW",
        model: { id: "cityedge-demand-lstm", version: "1.0.0", provider: "cpu" },
      });
      expect((a.body.horizon as unknown[]).length).toBe(48);
      // b is a shifted by 1000 MW: its forecast is not a's (each series got its own window)
      const b = published.find((p) => p.body.series_id === "f-b")!;
      expect((b.body.horizon as { value: number }[])[0]!.value).not.toBe((a.body.horizon as { value: number }[])[0]!.value);
      expect(sched.health()).toMatchObject({
        series: {
          "f-d": {
            skipped: 1,
            skipped_by_reason: { gap: 1, missing: 0, no_history: 0, scaling: 0, step: 0 },
            last_skip_reason: "a gap of 48 steps (24.0 h) from 2026-03-03T14:00:00.000Z is longer than max_gap_steps 6",
          },
          "f-a": { published: 1 },
        },
      });
    } finally {
      await sched.stop();
    }
  });

  it("keeps running the series whose model loaded when another model fails, and says which series lost its model", async () => {
    const meters = [METER_SCHEMA.parse({ id: "a", driver: "replay", file: "x.csv", values: { p: { column: "p" } } })];
    const forecasts = [
      FORECAST_SCHEMA.parse({ id: "good", source: "meter:a:p", model: "lstm", timezone: "UTC" }),
      FORECAST_SCHEMA.parse({ id: "broken", source: "meter:a:p", model: "missing" }),
    ];
    const sched = new ForecastScheduler({
      forecasts,
      meters,
      store,
      bus: busInto({ publish: () => undefined }, new Topics("cityedge", "dev")),
      log,
      loadModel: async (id) => {
        if (id === "missing") throw new Error("model manifest /x/manifest.json: file not found");
        // the scheduler releases what it loaded when it stops
        return ForecastModel.load({
          manifestFile: path.join(REPO_ROOT, "models/demand_lstm/manifest.json"),
          providers: ["cpu"],
          threads: 1,
          variant: "fp32",
          log,
        });
      },
    });
    await sched.start();
    expect(sched.health()).toMatchObject({
      state: "degraded",
      series: {
        broken: { state: "degraded", model_error: 'model "missing": model manifest /x/manifest.json: file not found', published: 0 },
        good: { state: "running", published: 0 },
      },
    });
    await sched.stop();
  });
});
