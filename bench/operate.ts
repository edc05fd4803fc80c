import { existsSync } from "node:fs";
import path from "node:path";
import pino from "pino";
import { summarizeHealth } from "../runtime/http/healthSummary.js";
import { ProcessMonitor } from "../runtime/http/processMetrics.js";
import { HttpServer } from "../runtime/http/server.js";
import { loadDetectionManifest } from "../runtime/detect/detectionManifest.js";
import { Metrics } from "../runtime/metrics.js";
import { openDetectionSession } from "../runtime/modelUpdate/checkedSession.js";
import type { PartKind } from "../runtime/part.js";
import type { PartReport } from "../runtime/partHealth.js";
import { percentile, repoRoot, round, sharedDataDir } from "./benchProcess.js";
import type { BenchResult } from "./index.js";

/** A registry shaped like a busy device's: 8 cameras, 2 models, 20 meters, the outbox and MQTT. */
function deviceMetrics(): Metrics {
  const m = new Metrics();
  const hist = m.histogram("cityedge_inference_seconds");
  for (let c = 0; c < 8; c++) {
    const camera = `cam-${c}`;
    m.counter("cityedge_camera_frames_total").inc({ camera }, 1000 + c);
    m.counter("cityedge_detect_frames_total").inc({ camera }, 900 + c);
    m.counter("cityedge_camera_dropped_frames_total").inc({ camera }, c);
    m.gauge("cityedge_camera_fps").set(10, { camera });
  }
  for (const model of ["yolox_nano", "demand_lstm"]) for (let i = 0; i < 1000; i++) hist.observe((i % 50) / 1000, { model, provider: "cpu" });
  for (let i = 0; i < 20; i++) m.counter("cityedge_meter_readings_total").inc({ meter: `m-${i}`, quality: "good" }, 500);
  m.gauge("cityedge_outbox_depth").set(12);
  m.counter("cityedge_mqtt_published_total").inc(undefined, 123_456);
  return m;
}

/** The reports of a busy device's parts; only the fields a summary reads are filled. */
function deviceParts(): PartReport[] {
  const report = (name: string, kind: PartKind, health: Record<string, unknown>, id?: string) =>
    ({ name, kind, ...(id !== undefined ? { id } : {}), health: { state: "running", ...health } }) as PartReport;
  const parts = [
    report("mqtt", "mqtt", { connected: true }),
    report("outbox", "outbox", { depth: 12, bytes: 4096, dropped: 0 }),
    report("detector:yolox_nano", "detector", { provider: "cpu", runs: 9000 }, "yolox_nano"),
    report("meters", "meters", { meters: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`m-${i}`, { state: "running", readings: 500 }])) }),
  ];
  for (let c = 0; c < 8; c++) parts.push(report(`camera:cam-${c}`, "camera", { fps_in: 10, frames_in: 1000 }, `cam-${c}`));
  return parts;
}

/** Sequential GETs on loopback; latency per request in ms, sorted. */
async function timeGets(url: string, n: number): Promise<{ ms: number[]; bytes: number }> {
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    bytes = (await res.arrayBuffer()).byteLength;
    ms.push(performance.now() - t0);
  }
  return { ms: ms.sort((a, b) => a - b), bytes };
}

/**
 * `cityedge bench operate`: what operating the device costs. /healthz and /metrics latency on a
 * registry the size of a busy device's, and the time update_model needs to load, check-run and
 * swap YOLOX-Nano (detection keeps running on the old session meanwhile).
 */
export async function operateBench(args: string[]): Promise<BenchResult[]> {
  const n = Number(args.find((a) => a.startsWith("--requests="))?.split("=")[1] ?? 300);
  const log = pino({ level: "silent" });
  const metrics = deviceMetrics();
  const monitor = new ProcessMonitor(metrics);
  monitor.start();
  const parts = deviceParts();
  const server = new HttpServer({
    host: "127.0.0.1",
    port: 0,
    log,
    metrics,
    summary: () => summarizeHealth({ deviceId: "bench", parts, lag: monitor.lag(), lagLimitMs: 5000 }),
  });
  await server.start();
  const figures: Record<string, number | string> = { requests: n };
  try {
    const base = `http://127.0.0.1:${server.port}`;
    await timeGets(`${base}/metrics`, 20);
    const metricsRun = await timeGets(`${base}/metrics`, n);
    const healthRun = await timeGets(`${base}/healthz`, n);
    figures.metrics_p50_ms = round(percentile(metricsRun.ms, 50), 2);
    figures.metrics_p99_ms = round(percentile(metricsRun.ms, 99), 2);
    figures.metrics_body_bytes = metricsRun.bytes;
    figures.healthz_p50_ms = round(percentile(healthRun.ms, 50), 2);
    figures.healthz_p99_ms = round(percentile(healthRun.ms, 99), 2);
    figures.healthz_body_bytes = healthRun.bytes;
  } finally {
    await server.stop();
    monitor.stop();
  }

  const ROOT = repoRoot();
  const data = sharedDataDir(ROOT);
  if (!existsSync(path.join(data, "models/yolox_nano.onnx"))) {
    figures.swap = `skipped: shared data not found under ${data} (CITYEDGE_SHARED_DATA)`;
  } else {
    process.env.CITYEDGE_SHARED_DATA ??= data;
    const manifest = loadDetectionManifest(path.join(ROOT, "models/yolox_nano/manifest.json"));
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const s = await openDetectionSession(manifest, null, { providers: ["cpu"], threads: 2, variant: "auto", log });
      times.push(performance.now() - t0);
      await s.release();
    }
    figures.swap_model = "yolox_nano (cpu, 2 threads)";
    // Detection keeps running on the old session during this; the swap itself is a reference change.
    figures.swap_load_and_check_ms_median = round(times.sort((a, b) => a - b)[1]!, 0);
  }
  return [{ name: "operate", figures }];
}
