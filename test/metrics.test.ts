import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveFfmpeg } from "../drivers/camera/ffmpegBinary.js";
import { CONFIG_SCHEMA, type Config } from "../runtime/config/schema.js";
import { Daemon } from "../runtime/daemon.js";
import { HistoryStore } from "../runtime/history/historyStore.js";
import { ProcessMonitor } from "../runtime/http/processMetrics.js";
import { SecretScrubber } from "../runtime/log/logger.js";
import { METRIC_SPECS, Metrics, type MetricName } from "../runtime/metrics.js";
import { get, until } from "./helpers/http.js";
import { freePort } from "./helpers/mosquitto.js";
import { parsePrometheus, sampleValue, type PromFamily } from "./helpers/promParse.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

const PROMTOOL = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((p) => existsSync(p));
if (!PROMTOOL) {
  if (process.env.CI) throw new Error("promtool is missing (apt-get install prometheus); CI checks the exposition with it");
  console.warn("[cityedge tests] promtool not found (apt-get install prometheus): the exposition is checked by the parser only");
}

/** `promtool check metrics` on the text: its exit status and what it said. */
function promtool(text: string): { status: number | null; out: string } {
  const r = spawnSync(PROMTOOL!, ["check", "metrics"], { input: text, encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

let dir: string;
let clip: string;
const log = pino({ level: "silent" });

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-metrics-"));
  clip = path.join(dir, "clip.mp4");
  execFileSync(resolveFfmpeg().path, [
    "-hide_banner",
    "-loglevel",
    "error",
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=96x64:rate=10",
    "-t",
    "5",
    "-pix_fmt",
    "yuv420p",
    clip,
  ]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A device's config: two cameras (one detecting), two meters, a forecast, the shipped models. */
function deviceConfig(over: Partial<Record<string, unknown>> = {}): Config {
  return CONFIG_SCHEMA.parse({
    device_id: "metrics-1",
    data_dir: path.join(dir, "data"),
    mqtt: { url: "mqtt://127.0.0.1:9", reconnect_min_ms: 1000, reconnect_max_ms: 5000 },
    broker: { enabled: false },
    http: { enabled: false, health_publish_ms: 0 },
    models: [
      { id: "vehicles", manifest: path.join(REPO_ROOT, "models/vehicles/manifest.json"), providers: ["cpu"], threads: 1 },
      { id: "demand_lstm", manifest: path.join(REPO_ROOT, "models/demand_lstm/manifest.json"), providers: ["cpu"], threads: 1 },
    ],
    cameras: [
      { id: "gate", url: `file://${clip}`, fps: 2, model: "vehicles" },
      { id: "yard", url: `file://${clip}`, fps: 2 },
    ],
    meters: [
      { id: "m1", driver: "simulated", interval_ms: 60_000 },
      { id: "m2", driver: "simulated", interval_ms: 60_000 },
    ],
    forecasts: [{ id: "load", source: "meter:m1:power_kw", model: "demand_lstm" }],
    ...over,
  });
}

const counterNames = (Object.keys(METRIC_SPECS) as MetricName[]).filter((n) => METRIC_SPECS[n].type === "counter");
/** The parser names a counter's family without `_total`. */
const family = (families: Map<string, PromFamily>, name: string) => families.get(name.replace(/_total$/, ""));

describe("the metrics registry (prom-client)", () => {
  it("has every counter at 0 from the start, labelled for every configured camera, meter, model, forecast and command", async () => {
    const metrics = new Metrics();
    metrics.prime(deviceConfig());
    const text = await metrics.render();
    const families = parsePrometheus(text);
    for (const name of counterNames) {
      const f = family(families, name);
      expect(f, name).toBeDefined();
      expect(f!.type, name).toBe("counter");
      const samples = f!.samples.filter((s) => s.name === name);
      expect(samples.length, `${name} has series`).toBeGreaterThan(0);
      for (const s of samples) expect(s.value, `${name} ${JSON.stringify(s.labels)}`).toBe(0);
    }
    const labelsOf = (name: string, label: string) => new Set(family(families, name)!.samples.map((s) => s.labels[label]));
    expect(labelsOf("cityedge_camera_frames_total", "camera")).toEqual(new Set(["gate", "yard"]));
    expect(labelsOf("cityedge_detect_frames_total", "camera")).toEqual(new Set(["gate"]));
    expect(labelsOf("cityedge_meter_readings_total", "meter")).toEqual(new Set(["m1", "m2"]));
    expect(labelsOf("cityedge_meter_readings_total", "quality")).toEqual(
      new Set(["good", "timeout", "exception", "nan", "out_of_range", "stale", "error"]),
    );
    expect(labelsOf("cityedge_model_updates_total", "model")).toEqual(new Set(["vehicles", "demand_lstm"]));
    expect(labelsOf("cityedge_forecasts_total", "series")).toEqual(new Set(["load"]));
    expect(sampleValue(families, "cityedge_commands_total", { command: "reload_config", outcome: "rejected" })).toBe(0);
    expect(sampleValue(families, "cityedge_commands_total", { command: "unknown", outcome: "unknown_command" })).toBe(0);
    // The standard process and Node metrics, and not prom-client's event-loop figures that a scrape resets.
    for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "process_open_fds"]) {
      expect(text, name).toMatch(new RegExp(`^${name} \\d`, "m"));
    }
    for (const name of ["nodejs_heap_size_used_bytes", "nodejs_external_memory_bytes", "nodejs_version_info", "process_uptime_seconds"]) {
      expect(text, name).toContain(`\n${name}`);
    }
    expect(text).not.toContain("nodejs_eventloop_lag");
    if (PROMTOOL) {
      const check = promtool(text);
      console.info(`promtool check metrics (registry at start): exit ${check.status}${check.out ? `\n${check.out}` : ", no findings"}`);
      expect(check).toEqual({ status: 0, out: "" });
    }
  });

  it("keeps what was counted across a reload, adds the series of a new camera at 0 and drops those of a removed one", async () => {
    const metrics = new Metrics();
    metrics.prime(deviceConfig());
    metrics.counter("cityedge_camera_frames_total").inc({ camera: "gate" }, 7);
    metrics.prime(
      deviceConfig({
        cameras: [
          { id: "gate", url: `file://${clip}`, fps: 2, model: "vehicles" },
          { id: "dock", url: `file://${clip}`, fps: 2 },
        ],
      }),
    );
    const families = parsePrometheus(await metrics.render());
    const frames = family(families, "cityedge_camera_frames_total")!.samples.map((s) => [s.labels.camera, s.value]);
    expect(Object.fromEntries(frames)).toEqual({ gate: 7, dock: 0 });
  });

  it("resets nothing on a scrape, and a reader goes with the part that made it (a reload's new history store is the one read)", async () => {
    const metrics = new Metrics();
    const store = (name: string) =>
      new HistoryStore({
        file: path.join(dir, `${name}.sqlite`),
        rawRetentionMs: 3_600_000,
        retentionMs: 86_400_000,
        log,
        metrics,
        flushIntervalMs: 3_600_000,
      });
    const queue = async () => sampleValue(parsePrometheus(await metrics.render()), "cityedge_history_queue");
    const a = store("a");
    await a.start();
    for (let i = 0; i < 5; i++) a.record("meter:m1:power_kw", 1000 * i, i, "good");
    expect(await queue()).toBe(5);
    expect(await queue()).toBe(5);
    await a.stop();
    expect(await queue()).toBe(0);
    const b = store("b");
    await b.start();
    for (let i = 0; i < 2; i++) b.record("meter:m1:power_kw", 1000 * i, i, "good");
    expect(await queue()).toBe(2);
    await b.stop();
  });

  it("measures the event-loop delay beyond the sampler's interval: about 0 when idle, the block when blocked, the same on every read", async () => {
    const metrics = new Metrics();
    const monitor = new ProcessMonitor(metrics, { windowMs: 200 });
    monitor.start();
    try {
      await new Promise((r) => setTimeout(r, 500));
      const idle = monitor.lag();
      // The sampler looks every 10 ms; an idle loop is not "10 ms late".
      expect(idle.p50_ms).toBeLessThan(10);
      const until = Date.now() + 250;
      while (Date.now() < until) {
        // A 250 ms block of the loop.
      }
      await new Promise((r) => setTimeout(r, 500));
      const reads = [monitor.lag(), monitor.lag()];
      const scrapes = await Promise.all([metrics.render(), metrics.render()]);
      expect(reads[0]!.max_ms).toBeGreaterThanOrEqual(240);
      expect(reads[1]).toEqual(reads[0]);
      const maxes = scrapes.map((t) => sampleValue(parsePrometheus(t), "cityedge_event_loop_delay_seconds", { stat: "max" }));
      expect(maxes[0]).toBeGreaterThanOrEqual(0.24);
      expect(maxes[1]).toBe(maxes[0]);
    } finally {
      monitor.stop();
    }
  });
});

describe("the daemon's /metrics", () => {
  it("passes the parser and promtool at start, with the counters of every configured camera, meter, model and forecast", async () => {
    const port = await freePort();
    const config = deviceConfig({ http: { enabled: true, host: "127.0.0.1", port, health_publish_ms: 0 } });
    const daemon = new Daemon({
      configFile: path.join(dir, "x.yaml"),
      loaded: { config, file: path.join(dir, "x.yaml"), baseDir: dir, secrets: [] },
      log,
      scrubber: new SecretScrubber(),
    });
    try {
      await daemon.start();
      const text = await until("/metrics", async () => {
        const r = await get(`http://127.0.0.1:${port}/metrics`);
        return r.status === 200 ? r.body : undefined;
      });
      const families = parsePrometheus(text);
      for (const name of counterNames) expect(family(families, name), name).toBeDefined();
      expect(sampleValue(families, "cityedge_forecasts_total", { series: "load" })).toBe(0);
      expect(sampleValue(families, "cityedge_meter_readings_total", { meter: "m2", quality: "timeout" })).toBe(0);
      expect(sampleValue(families, "cityedge_camera_restarts_total", { camera: "yard" })).toBe(0);
      expect(sampleValue(families, "cityedge_model_updates_total", { model: "vehicles", outcome: "rolled_back" })).toBe(0);
      expect(
        family(families, "cityedge_event_loop_delay_seconds")!
          .samples.map((s) => s.labels.stat)
          .sort(),
      ).toEqual(["max", "p50", "p99"]);
      if (PROMTOOL) {
        const check = promtool(text);
        console.info(
          `promtool check metrics (the daemon's /metrics at start): exit ${check.status}${check.out ? `\n${check.out}` : ", no findings"}`,
        );
        expect(check).toEqual({ status: 0, out: "" });
      }
    } finally {
      await daemon.stop();
    }
  });
});
