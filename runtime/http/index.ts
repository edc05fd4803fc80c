import type { PartContext } from "../part.js";
import type { Part } from "../part.js";
import { HealthPublisher } from "./healthPublisher.js";
import { summarizeHealth, type HealthSummary } from "./healthSummary.js";
import { ProcessMonitor } from "./processMetrics.js";
import { HttpServer } from "./server.js";

export { HealthPublisher } from "./healthPublisher.js";
export { summarizeHealth, type HealthSummary } from "./healthSummary.js";
export { ProcessMonitor } from "./processMetrics.js";
export { HttpServer } from "./server.js";

/** The process monitor as a part, so its sampler starts and stops with the daemon. */
class ProcessMonitorPart implements Part {
  readonly name = "process";
  readonly kind = "process";
  readonly #m: ProcessMonitor;
  constructor(m: ProcessMonitor) {
    this.#m = m;
  }
  async start(): Promise<void> {
    this.#m.start();
  }
  async stop(): Promise<void> {
    this.#m.stop();
  }
  get monitor(): ProcessMonitor {
    return this.#m;
  }
}

/**
 * The operator's view: `/healthz` and `/metrics` over HTTP, process metrics, and the
 * health summary emitted on the bus (the outbox publishes it to `<base>/health`).
 */
export function buildHealthParts(ctx: PartContext): Part[] {
  const cfg = ctx.config.http;
  const monitorPart = ctx.part(new ProcessMonitorPart(new ProcessMonitor(ctx.metrics)), { slice: {} });
  const monitor = monitorPart.monitor;
  const summary = (): HealthSummary => {
    return summarizeHealth({
      deviceId: ctx.config.device_id,
      parts: ctx.health(),
      lag: monitor.lag(),
      lagLimitMs: cfg.event_loop_lag_limit_ms,
      lastReload: ctx.lastReload(),
    });
  };
  const parts: Part[] = [monitorPart];
  const { health_publish_ms: everyMs, ...server } = cfg;
  if (cfg.enabled) {
    parts.push(
      ctx.part(
        new HttpServer({
          host: cfg.host,
          port: cfg.port,
          log: ctx.log.child({ module: "http" }),
          metrics: ctx.metrics,
          summary,
        }),
        { slice: server, deps: [monitorPart] },
      ),
    );
  }
  if (everyMs > 0) {
    parts.push(
      ctx.part(new HealthPublisher({ bus: ctx.bus, everyMs, summary, log: ctx.log.child({ module: "health" }) }), {
        slice: { everyMs, lagLimitMs: cfg.event_loop_lag_limit_ms },
        deps: [monitorPart],
      }),
    );
  }
  return parts;
}
