/**
 * `cityedge bench [--json]`: runs every benchmark and prints figures. Benchmarks register here;
 * none of them is a test, and none fails on speed.
 */
export interface BenchResult {
  name: string;
  figures: Record<string, number | string>;
  /** Printed as a table after the figures (and in --json as it is). */
  table?: { columns: string[]; rows: (string | number)[][] };
  /** Everything measured, for --json only. */
  data?: unknown;
}

export type Bench = (args: string[]) => Promise<BenchResult[]>;

/** A benchmark's option that cannot be used: `cityedge bench` says so and exits 64, without a stack trace. */
export class BenchUsageError extends Error {}

export const BENCHES: { name: string; load: () => Promise<Bench> }[] = [
  // Camera ingest: fps and CPU per camera (real clip, 1080p → 416), cameras at 10 fps, RSS; --duration=S.
  { name: "camera", load: async () => (await import("./camera.js")).cameraBench },
  // Detection: bare session.run vs the full pipeline vs the OpenCV peer; --duration=S.
  { name: "detect", load: async () => (await import("./detect.js")).detectBench },
  // Durable MQTT: raw MQTT.js QoS 1 vs the outbox path to a real broker; 100k drain with RSS.
  { name: "mqtt", load: async () => (await import("./mqttBench.js")).mqttBench },
  // Meters and forecasts: Modbus TCP polling capacity, 200 meters at 1 Hz, a batched forecast of 100 series; --duration=S.
  { name: "meters", load: async () => (await import("./meters.js")).metersBench },
  // Forecaster choice on real series (Taylor at 30 min and 1 h, gretl-data's bike rentals and utility load): every candidate's MAE/MAPE; --days=N.
  { name: "forecast", load: async () => (await import("./forecast.js")).forecastBench },
  // Shipped models: each variant's ms per run on the CPU provider at 1 and 2 threads, int8/fp16 speed-up over fp32.
  { name: "models", load: async () => (await import("./models.js")).modelsBench },
  // GPU check: every model on every provider that works, first and cached start, batch 1 and N, agreement with the CPU.
  { name: "gpu", load: async () => (await import("./gpu.js")).gpuBench },
  // The web console: stills at the camera's resolution (ffmpeg CPU with/without), CPU per live picture, the MPEG-1 live view for comparison.
  { name: "console", load: async () => (await import("./console.js")).consoleBench },
  // Capacity: cameras sustained at 10 fps with < 1 % dropped and CPU per camera, per variant, gating on/off, busy/quiet scene; see docs/benchmarks.md.
  { name: "capacity", load: async () => (await import("./capacity.js")).capacityBench },
  // Operating the device: /healthz and /metrics latency at a busy device's size, model hot-swap time; --requests=N.
  { name: "operate", load: async () => (await import("./operate.js")).operateBench },
];

export async function runBench(args: string[]): Promise<number> {
  const json = args.includes("--json");
  const only = args.find((a) => !a.startsWith("--"));
  const results: BenchResult[] = [];
  for (const b of BENCHES) {
    if (only !== undefined && b.name !== only) continue;
    const fn = await b.load();
    try {
      results.push(...(await fn(args)));
    } catch (err) {
      if (!(err instanceof BenchUsageError)) throw err;
      process.stderr.write(`cityedge bench ${b.name}: ${err.message}\n`);
      return 64;
    }
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
  } else {
    for (const r of results) {
      process.stdout.write(`${r.name}\n`);
      for (const [k, v] of Object.entries(r.figures)) process.stdout.write(`  ${k.padEnd(48)} ${v}\n`);
      if (r.table) process.stdout.write(tableText(r.table));
    }
    if (results.length === 0) process.stdout.write("no benchmarks registered\n");
  }
  return 0;
}

/** Columns padded to their widest cell, numbers right-aligned. */
function tableText(t: NonNullable<BenchResult["table"]>): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map(String))];
  const width = t.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[], raw?: readonly (string | number)[]) =>
    `  ${r.map((c, i) => (typeof raw?.[i] === "number" ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join("  ")}`.trimEnd();
  return [line(t.columns), line(width.map((w) => "-".repeat(w))), ...t.rows.map((r) => line(r.map(String), r))].join("\n") + "\n";
}
