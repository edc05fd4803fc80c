import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import type { Metrics } from "../metrics.js";

/**
 * Process-level figures: resident memory, heap and event-loop lag. The lag is measured by
 * Node's own sampler; a loop that falls behind is the first sign of a daemon about to wedge.
 */
export class ProcessMonitor {
  readonly #metrics: Metrics;
  #histogram: IntervalHistogram | undefined;
  #windowStart = Date.now();

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  start(): void {
    this.#histogram = monitorEventLoopDelay({ resolution: 20 });
    this.#histogram.enable();
    this.#windowStart = Date.now();
  }

  /**
   * Sets the process gauges; call before rendering. (Gauges are not given collectors: the
   * registry outlives this monitor across config reloads, and a collector would hold a stale one.)
   */
  refresh(): void {
    const m = this.#metrics;
    const mem = process.memoryUsage();
    m.gauge("process_resident_memory_bytes", "Resident set size of the daemon process").set(mem.rss);
    m.gauge("nodejs_heap_used_bytes", "V8 heap in use").set(mem.heapUsed);
    m.gauge("nodejs_heap_total_bytes", "V8 heap reserved").set(mem.heapTotal);
    m.gauge("nodejs_external_memory_bytes", "Memory outside the V8 heap held by JavaScript objects (buffers, typed arrays, native addons)").set(
      mem.external,
    );
    m.gauge("process_uptime_seconds", "Seconds since the daemon process started").set(Math.round(process.uptime()));
    const lag = this.lag();
    const g = m.gauge("cityedge_event_loop_delay_seconds", "Event-loop delay sampled by Node over the last minute, by statistic (p50, p99, max)");
    g.set(lag.p50_ms / 1000, { stat: "p50" });
    g.set(lag.p99_ms / 1000, { stat: "p99" });
    g.set(lag.max_ms / 1000, { stat: "max" });
  }

  /** Event-loop delay since the window began; the window restarts every minute. */
  lag(): { p50_ms: number; p99_ms: number; max_ms: number } {
    const h = this.#histogram;
    if (!h || h.count === 0) return { p50_ms: 0, p99_ms: 0, max_ms: 0 };
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    const out = { p50_ms: ms(h.percentile(50)), p99_ms: ms(h.percentile(99)), max_ms: ms(h.max) };
    if (Date.now() - this.#windowStart > 60_000) {
      h.reset();
      this.#windowStart = Date.now();
    }
    return out;
  }

  stop(): void {
    this.#histogram?.disable();
    this.#histogram = undefined;
  }
}
