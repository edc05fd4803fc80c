/**
 * The Prometheus metrics, on prom-client's registry: the standard `process_*` and `nodejs_*`
 * metrics, and ours, every one declared in {@link METRIC_SPECS}. Each counter exists from the
 * start, at 0, and the labelled ones for every camera, meter, model, forecast and command the
 * config names ({@link Metrics.prime}), so an `increase()` alert sees the first event. Nothing
 * is reset by a scrape; values read at scrape time come from collectors that their part removes
 * when it stops.
 */
import { collectDefaultMetrics, Counter as PromCounter, Gauge as PromGauge, Histogram as PromHistogram, Registry } from "prom-client";
import { COMMAND_NAMES } from "./config/sections/commands.js";
import type { Config } from "./config/schema.js";
import { COMMAND_ERROR_CODES } from "./contract/messages/commandResponse.js";
import { VALUE_QUALITIES } from "./contract/messages/readings.js";

type Labels = Record<string, string>;

interface MetricSpec {
  type: "counter" | "gauge" | "histogram";
  help: string;
  labels: readonly string[];
  buckets?: readonly number[];
  /** The label sets that exist from the start, at 0, for a config. */
  prime?: (cfg: Config) => Labels[];
}

const cameras = (cfg: Config) => cfg.cameras.filter((c) => c.enabled).map((c) => ({ camera: c.id }));
const detecting = (cfg: Config) =>
  cfg.cameras.filter((c) => c.enabled && c.detection.enabled && c.model !== undefined).map((c) => ({ camera: c.id }));
const UPDATE_OUTCOMES = ["ok", "rejected", "download_failed", "rolled_back"];

/** Every metric of ours: its type, help, label names and the series it starts with. */
export const METRIC_SPECS = {
  cityedge_camera_frames_total: { type: "counter", help: "Frames received from ffmpeg, per camera", labels: ["camera"], prime: cameras },
  cityedge_camera_dropped_frames_total: {
    type: "counter",
    help: "Frames replaced in the latest-frame slot before inference took them, per camera",
    labels: ["camera"],
    prime: cameras,
  },
  cityedge_camera_restarts_total: { type: "counter", help: "ffmpeg restarts, per camera", labels: ["camera"], prime: cameras },
  cityedge_camera_corrupt_total: {
    type: "counter",
    help: "Damaged stream data reported by the decoder, per camera",
    labels: ["camera"],
    prime: cameras,
  },
  cityedge_camera_fps: { type: "gauge", help: "Frames per second received, per camera", labels: ["camera"], prime: cameras },
  cityedge_detect_frames_total: { type: "counter", help: "Frames run through detection, per camera", labels: ["camera"], prime: detecting },
  cityedge_inference_seconds: {
    type: "histogram",
    help: "Time per inference run, with the conversion of the frames into the input tensor",
    labels: ["model", "provider"],
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
  },
  cityedge_console_encode_seconds: {
    type: "histogram",
    help: "Time to encode one live picture for the web console (only while someone watches)",
    labels: [],
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
  },
  cityedge_mqtt_connected: { type: "gauge", help: "1 while the MQTT uplink is connected", labels: [] },
  cityedge_mqtt_reconnects_total: { type: "counter", help: "MQTT reconnect attempts", labels: [] },
  cityedge_mqtt_published_total: { type: "counter", help: "Messages the broker acknowledged", labels: [] },
  cityedge_outbox_depth: { type: "gauge", help: "Messages in the outbox not yet acknowledged by the broker", labels: [] },
  cityedge_outbox_bytes: { type: "gauge", help: "Payload bytes in the outbox", labels: [] },
  cityedge_outbox_committed_total: { type: "counter", help: "Messages committed to the outbox", labels: [] },
  cityedge_outbox_rejected_total: { type: "counter", help: "Messages the broker refused (MQTT 5 reason code), dropped", labels: [] },
  cityedge_outbox_dropped_total: {
    type: "counter",
    help: "Messages dropped by the outbox quota, while it could not commit (a full disk), or refused by the broker",
    labels: [],
  },
  cityedge_outbox_blocked: { type: "gauge", help: "1 while the outbox cannot commit (a full disk, an unusable file)", labels: [] },
  cityedge_outbox_fsync_seconds: {
    type: "histogram",
    help: "Background fsync of the outbox's WAL",
    labels: [],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
  },
  cityedge_meter_readings_total: {
    type: "counter",
    help: "Values read, per meter and quality (a quality other than good is a poll error)",
    labels: ["meter", "quality"],
    prime: (cfg) => cfg.meters.filter((m) => m.enabled).flatMap((m) => VALUE_QUALITIES.map((quality) => ({ meter: m.id, quality }))),
  },
  cityedge_history_queue: { type: "gauge", help: "Readings waiting to be written to the history store", labels: [] },
  cityedge_forecasts_total: {
    type: "counter",
    help: "Forecasts published, per series",
    labels: ["series"],
    prime: (cfg) => cfg.forecasts.map((f) => ({ series: f.id })),
  },
  cityedge_forecasts_skipped_total: {
    type: "counter",
    help: "Forecasts skipped because too much history was missing, per series",
    labels: ["series"],
    prime: (cfg) => cfg.forecasts.map((f) => ({ series: f.id })),
  },
  cityedge_forecast_batch_seconds: {
    type: "histogram",
    help: "Time of one batched forecast run, per model",
    labels: ["model"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  },
  cityedge_commands_total: {
    type: "counter",
    help: "Commands received, by command and outcome",
    labels: ["command", "outcome"],
    prime: (cfg) =>
      cfg.commands.enabled
        ? [...COMMAND_NAMES, "unknown"].flatMap((command) => ["ok", ...COMMAND_ERROR_CODES].map((outcome) => ({ command, outcome })))
        : [],
  },
  cityedge_model_updates_total: {
    type: "counter",
    help: "update_model outcomes, by model and outcome",
    labels: ["model", "outcome"],
    prime: (cfg) => (cfg.commands.enabled ? cfg.models.flatMap((m) => UPDATE_OUTCOMES.map((outcome) => ({ model: m.id, outcome }))) : []),
  },
  cityedge_event_loop_delay_seconds: {
    type: "gauge",
    help: "Event-loop delay beyond the sampler's own interval: p50 and p99 of the last completed 10 s window, max of the last minute",
    labels: ["stat"],
  },
  process_uptime_seconds: { type: "gauge", help: "Seconds since the daemon process started", labels: [] },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRIC_SPECS;
type NamesOf<T extends MetricSpec["type"]> = { [K in MetricName]: (typeof METRIC_SPECS)[K]["type"] extends T ? K : never }[MetricName];
export type CounterName = NamesOf<"counter">;
export type GaugeName = NamesOf<"gauge">;
export type HistogramName = NamesOf<"histogram">;

/**
 * Default metrics we leave out: prom-client's event-loop figures are reset by every scrape and
 * include the sampler's interval (ours are not, see ProcessMonitor); the `_total` handle counts
 * are gauges that promtool rejects for the suffix (`nodejs_active_handles` etc. by type remain).
 */
const REPLACED_DEFAULTS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
  "nodejs_eventloop_lag_seconds",
  "nodejs_eventloop_lag_min_seconds",
  "nodejs_eventloop_lag_max_seconds",
  "nodejs_eventloop_lag_mean_seconds",
  "nodejs_eventloop_lag_stddev_seconds",
  "nodejs_eventloop_lag_p50_seconds",
  "nodejs_eventloop_lag_p90_seconds",
  "nodejs_eventloop_lag_p99_seconds",
];

export class Counter {
  readonly #m: PromCounter;
  constructor(m: PromCounter) {
    this.#m = m;
  }

  inc(labels?: Labels, by = 1): void {
    if (labels) this.#m.inc(labels, by);
    else this.#m.inc(by);
  }
}

export class Gauge {
  readonly #m: PromGauge;
  constructor(m: PromGauge) {
    this.#m = m;
  }

  set(value: number, labels?: Labels): void {
    if (labels) this.#m.set(labels, value);
    else this.#m.set(value);
  }
}

export class Histogram {
  readonly #m: PromHistogram;
  constructor(m: PromHistogram) {
    this.#m = m;
  }

  observe(value: number, labels?: Labels): void {
    if (labels) this.#m.observe(labels, value);
    else this.#m.observe(value);
  }
}

/** Reads a gauge's value(s) at scrape time: one number, or one per label set. */
export type GaugeReader = (gauge: Gauge) => void;

const key = (labels: Labels) =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");

/** The daemon's registry; it outlives reloads, so counters keep counting. */
export class Metrics {
  readonly registry = new Registry();
  readonly #counters = new Map<string, Counter>();
  readonly #gauges = new Map<string, Gauge>();
  readonly #histograms = new Map<string, Histogram>();
  readonly #proms = new Map<string, PromCounter | PromGauge | PromHistogram>();
  readonly #readers = new Map<string, Set<GaugeReader>>();
  /** Per metric, the label sets the last prime() made, to remove those of things no longer configured. */
  readonly #primed = new Map<string, Map<string, Labels>>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const name of REPLACED_DEFAULTS) this.registry.removeSingleMetric(name);
    for (const [name, spec] of Object.entries(METRIC_SPECS) as [MetricName, MetricSpec][]) this.#make(name, spec);
    this.collect("process_uptime_seconds", (g) => g.set(Math.round(process.uptime())));
  }

  #make(name: string, spec: MetricSpec): void {
    const base = { name, help: spec.help, labelNames: [...spec.labels], registers: [this.registry] };
    switch (spec.type) {
      case "counter": {
        const m = new PromCounter(base);
        this.#proms.set(name, m);
        this.#counters.set(name, new Counter(m));
        return;
      }
      case "gauge": {
        const readers = new Set<GaugeReader>();
        this.#readers.set(name, readers);
        const m = new PromGauge({
          ...base,
          // The values the running parts read at scrape time (gauges set as things happen have no reader).
          collect(this: PromGauge) {
            const gauge = new Gauge(this);
            for (const read of readers) read(gauge);
          },
        });
        this.#proms.set(name, m);
        this.#gauges.set(name, new Gauge(m));
        return;
      }
      case "histogram": {
        const m = new PromHistogram({ ...base, buckets: [...(spec.buckets ?? [])] });
        this.#proms.set(name, m);
        this.#histograms.set(name, new Histogram(m));
        return;
      }
    }
  }

  counter(name: CounterName): Counter {
    return this.#counters.get(name)!;
  }

  gauge(name: GaugeName): Gauge {
    return this.#gauges.get(name)!;
  }

  histogram(name: HistogramName): Histogram {
    return this.#histograms.get(name)!;
  }

  /**
   * Sets a gauge at every scrape from `read`; returns the function that removes it again, which
   * the part calls in stop(), so no reader outlives the part that made it. Removed, the gauge
   * is reset (0, or no labelled series).
   */
  collect(name: GaugeName, read: GaugeReader): () => void {
    const readers = this.#readers.get(name)!;
    readers.add(read);
    return () => {
      if (readers.delete(read) && readers.size === 0) (this.#proms.get(name) as PromGauge).reset();
    };
  }

  /**
   * Makes the labelled series of everything the config names (cameras, meters, models,
   * forecasts, commands) exist at 0, and removes those of things it no longer names. Counting
   * already done is kept.
   */
  prime(cfg: Config): void {
    for (const [name, spec] of Object.entries(METRIC_SPECS) as [MetricName, MetricSpec][]) {
      if (!spec.prime) continue;
      const want = new Map(spec.prime(cfg).map((l) => [key(l), l]));
      const before = this.#primed.get(name) ?? new Map<string, Labels>();
      const m = this.#proms.get(name)!;
      for (const [k, labels] of before) if (!want.has(k)) m.remove(labels);
      for (const [k, labels] of want) {
        if (before.has(k)) continue;
        if (m instanceof PromCounter) m.inc(labels, 0);
        else if (m instanceof PromGauge) m.set(labels, 0);
        else m.zero(labels);
      }
      this.#primed.set(name, want);
    }
  }

  /** The Prometheus text format (0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
