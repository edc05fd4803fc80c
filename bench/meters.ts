import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pino from "pino";
import { MetersPart } from "../runtime/meters/metersPart.js";
import { ModbusTcpMeter } from "../drivers/meter/modbusTcp.js";
import { METER_SCHEMA, type MeterConfig, type ModbusTcpMeterConfig } from "../runtime/config/sections/meters.js";
import { ForecastModel } from "../runtime/forecast/forecastModel.js";
import { buildWindow } from "../runtime/forecast/window.js";
import { DaemonBus } from "../runtime/events/events.js";
import { HistoryRecorder } from "../runtime/history/historyRecorder.js";
import { HistoryStore } from "../runtime/history/historyStore.js";
import { feedOutbox } from "../runtime/mqtt/outboxFeed.js";
import type { MessageSink } from "../runtime/mqtt/sink.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { freePort, percentile, repoRoot, round, stopChild } from "./benchProcess.js";
import type { BenchResult } from "./index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EXT = path.extname(fileURLToPath(import.meta.url));
const log = pino({ level: "silent" });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startServer(): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = fork(path.join(HERE, `modbusBenchServer${EXT}`), [String(port)], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`modbus bench server exited with ${code}`)));
    child.on("message", (m: { ready?: boolean }) => m.ready && resolve());
  });
  return { port, child };
}

const sdm630 = (id: string, port: number, interval: number): ModbusTcpMeterConfig =>
  METER_SCHEMA.parse({
    driver: "modbus-tcp",
    id,
    host: "127.0.0.1",
    port,
    preset: "sdm630",
    interval_ms: Math.max(100, interval),
    timeout_ms: 2000,
    retries: 0,
  }) as ModbusTcpMeterConfig;

/** Readings per second when `meters` SDM630s (2 requests per reading) poll back to back. */
async function capacity(port: number, meters: number, seconds: number): Promise<Record<string, number>> {
  let good = 0;
  const drivers = Array.from({ length: meters }, (_, i) => new ModbusTcpMeter({ ...sdm630(`cap-${i}`, port, 100), interval_ms: 1 }, log));
  for (const d of drivers) await d.start((r) => (good += Object.values(r.values).every((v) => v.quality === "good") ? 1 : 0));
  await sleep(1000);
  const g0 = good;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const n = good - g0;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  for (const d of drivers) await d.stop();
  return {
    readings_per_s: round(n / elapsed),
    requests_per_s: round((2 * n) / elapsed),
    cpu_ms_per_reading: round((cpu.user + cpu.system) / 1000 / Math.max(1, n), 3),
  };
}

/** `meters` SDM630s at 1 Hz through the meters part: published (counted) and written to history. */
async function fleet(port: number, meters: number, seconds: number, dir: string): Promise<Record<string, number>> {
  const history = new HistoryStore({ file: path.join(dir, "history.sqlite"), rawRetentionMs: 3_600_000, retentionMs: 86_400_000, log });
  await history.start();
  let published = 0;
  let bad = 0;
  const sink: MessageSink = {
    publish: (_t, body) => {
      published++;
      if (body.quality !== "good") bad++;
    },
  };
  const cfgs: MeterConfig[] = Array.from({ length: meters }, (_, i) => sdm630(`m-${i}`, port, 1000));
  const bus = new DaemonBus();
  feedOutbox(bus, sink, new Topics("cityedge", "bench"));
  const recorder = new HistoryRecorder({ bus, store: history, countsOf: [], log });
  await recorder.start();
  const part = new MetersPart({ meters: cfgs, bus, baseDir: dir, log });
  await part.start();
  await sleep(2000);
  const p0 = published;
  const cpu0 = process.cpuUsage();
  const lags: number[] = [];
  let last = performance.now();
  const probe = setInterval(() => {
    const now = performance.now();
    lags.push(now - last - 100);
    last = now;
  }, 100);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const n = published - p0;
  const elapsed = (performance.now() - t0) / 1000;
  clearInterval(probe);
  const cpu = process.cpuUsage(cpu0);
  await part.stop();
  await recorder.stop();
  await history.stop();
  lags.sort((a, b) => a - b);
  return {
    meters,
    readings_per_s: round(n / elapsed),
    expected_per_s: meters,
    not_good: bad,
    values_written_per_s: round((n * 15) / elapsed),
    cpu_percent_of_one_core: round(((cpu.user + cpu.system) / 1000 / (elapsed * 1000)) * 100),
    event_loop_lag_p99_ms: round(percentile(lags, 99)),
  };
}

/** One batched forecast for `series` windows: model run alone, and with the windows read from SQLite. */
async function forecast(series: number, dir: string): Promise<Record<string, number>> {
  const root = repoRoot();
  const model = await ForecastModel.load({
    manifestFile: path.join(root, "models/demand_lstm/manifest.json"),
    providers: ["cpu"],
    threads: 2,
    variant: "fp32",
    log,
  });
  const { historySteps, stepMs } = model.spec;
  const store = new HistoryStore({ file: path.join(dir, "forecast.sqlite"), rawRetentionMs: 0, retentionMs: 30 * 86_400_000, log });
  await store.start();
  const issue = Math.floor(Date.now() / stepMs) * stepMs;
  const from = issue - historySteps * stepMs;
  for (let s = 0; s < series; s++) {
    store.track(`bench:${s}`, stepMs);
    for (let r = 0; r < historySteps; r++) {
      const t = from + r * stepMs;
      store.record(`bench:${s}`, t, 30000 + 5000 * Math.sin((2 * Math.PI * t) / 86_400_000) + 100 * s, "good");
    }
  }
  store.flush();
  const windows = () =>
    Array.from({ length: series }, (_, s) => {
      const w = buildWindow(store.buckets(`bench:${s}`, stepMs, from - stepMs, issue), {
        from,
        steps: historySteps,
        stepMs,
        aggregate: "mean",
        maxGapSteps: 6,
        maxMissingRatio: 0.1,
      });
      if (!w.ok) throw new Error(w.reason);
      return { values: w.values, from, timeZone: model.spec.timeZone, scaling: "model" as const };
    });
  const inputs = windows();
  await model.predict(inputs.slice(0, 1));
  await model.predict(inputs);
  const runs = 10;
  const batch: number[] = [];
  const endToEnd: number[] = [];
  const single: number[] = [];
  for (let i = 0; i < runs; i++) {
    let t = performance.now();
    await model.predict(inputs);
    batch.push(performance.now() - t);
    t = performance.now();
    await model.predict(windows());
    endToEnd.push(performance.now() - t);
    t = performance.now();
    await model.predict(inputs.slice(0, 1));
    single.push(performance.now() - t);
  }
  await store.stop();
  await model.release();
  const med = (a: number[]) =>
    round(
      percentile(
        [...a].sort((x, y) => x - y),
        50,
      ),
    );
  return {
    series,
    batched_predict_median_ms: med(batch),
    batched_with_windows_from_sqlite_median_ms: med(endToEnd),
    one_series_predict_median_ms: med(single),
    per_series_in_batch_ms: round(med(batch) / series, 2),
  };
}

export async function metersBench(args: string[]): Promise<BenchResult[]> {
  const seconds = Number(args.find((a) => a.startsWith("--duration="))?.slice("--duration=".length) ?? 10);
  const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-bench-meters-"));
  const server = await startServer();
  try {
    const cap = await capacity(server.port, 16, seconds);
    const fleetFigures = await fleet(server.port, 200, seconds, dir);
    const fc = await forecast(100, dir);
    return [
      { name: "meters: Modbus TCP polling capacity (16 SDM630 maps polled back to back, one server process)", figures: cap },
      { name: "meters: 200 SDM630 meters at 1 Hz (outbox sink counted, history written)", figures: fleetFigures },
      { name: "forecast: one batched LSTM run (demand_lstm fp32, CPU, 2 threads)", figures: fc },
    ];
  } finally {
    await stopChild(server.child, 2000);
    rmSync(dir, { recursive: true, force: true });
  }
}
