import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import type { Metrics } from "../metrics.js";

/** How often Node's sampler looks at the loop; it records the time between its looks, this included. */
const RESOLUTION_MS = 10;
/** p50 and p99 are those of the last completed window of this length (a scrape or a health read resets nothing). */
export const EVENT_LOOP_WINDOW_MS = 10_000;
/** The max is over this many windows (a minute), so a scraper that looks once a minute sees every stall. */
const MAX_WINDOWS = 6;

export interface EventLoopLag {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

const ZERO: EventLoopLag = { p50_ms: 0, p99_ms: 0, max_ms: 0 };

/**
 * The event loop's delay, measured by Node's own sampler (perf_hooks.monitorEventLoopDelay), less
 * the sampler's own interval, so an idle loop reads about 0 and a loop blocked for 300 ms reads
 * 300 ms: p50 and p99 of the last completed 10 s window, the max of the last minute. The windows
 * turn on their own timer; reading resets nothing. A loop that falls behind is the first sign of a
 * daemon about to wedge. The memory, CPU and heap figures are prom-client's default metrics.
 */
export class ProcessMonitor {
  readonly #metrics: Metrics;
  readonly #windowMs: number;
  #histogram: IntervalHistogram | undefined;
  #timer: NodeJS.Timeout | undefined;
  #last: EventLoopLag = ZERO;
  /** The max of each of the last completed windows, newest last. */
  #maxes: number[] = [];
  #uncollect: (() => void) | undefined;

  constructor(metrics: Metrics, opts: { windowMs?: number } = {}) {
    this.#metrics = metrics;
    this.#windowMs = opts.windowMs ?? EVENT_LOOP_WINDOW_MS;
  }

  start(): void {
    this.stop();
    const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    h.enable();
    this.#histogram = h;
    this.#last = ZERO;
    this.#maxes = [];
    this.#timer = setInterval(() => this.#roll(), this.#windowMs);
    this.#timer.unref();
    this.#uncollect = this.#metrics.collect("cityedge_event_loop_delay_seconds", (g) => {
      const lag = this.lag();
      g.set(lag.p50_ms / 1000, { stat: "p50" });
      g.set(lag.p99_ms / 1000, { stat: "p99" });
      g.set(lag.max_ms / 1000, { stat: "max" });
    });
  }

  /** The window is over: its figures become the ones reported, and the next window starts empty. */
  #roll(): void {
    const h = this.#histogram;
    if (!h) return;
    this.#last = h.count > 0 ? figures(h) : ZERO;
    this.#maxes.push(this.#last.max_ms);
    if (this.#maxes.length > MAX_WINDOWS) this.#maxes.shift();
    h.reset();
  }

  /**
   * p50 and p99 of the last completed window; the max of the last minute, the window under way
   * included (a blocked loop is reported as soon as it runs again, not a window later).
   */
  lag(): EventLoopLag {
    const h = this.#histogram;
    const current = h && h.count > 0 ? figures(h).max_ms : 0;
    return { p50_ms: this.#last.p50_ms, p99_ms: this.#last.p99_ms, max_ms: Math.max(current, ...this.#maxes) };
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#histogram?.disable();
    this.#histogram = undefined;
    this.#uncollect?.();
    this.#uncollect = undefined;
  }
}

function figures(h: IntervalHistogram): EventLoopLag {
  const ms = (ns: number) => Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100);
  return { p50_ms: ms(h.percentile(50)), p99_ms: ms(h.percentile(99)), max_ms: ms(h.max) };
}
