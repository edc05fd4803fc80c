import type { PartContext } from "../part.js";
import type { Part } from "../part.js";
import { HealthPublisher } from "./healthPublisher.js";
import { summarizeHealth, type HealthSummary } from "./healthSummary.js";
import { ProcessMonitor } from "./processMetrics.js";
import { AccessGuard } from "./access.js";
import { HttpServer, type Route, type UpgradeRoute } from "./server.js";

export { HealthPublisher } from "./healthPublisher.js";
export { summarizeHealth, type HealthSummary } from "./healthSummary.js";
export { ProcessMonitor } from "./processMetrics.js";
export { AccessGuard, SESSION_COOKIE } from "./access.js";
export { HttpServer, type Route, type UpgradeRoute } from "./server.js";

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

/** What the web console adds to the HTTP endpoint, and what of the config those routes read. */
export interface WebRoutes {
  routes?: Route[];
  upgrades?: UpgradeRoute[];
  slice?: unknown;
}

/**
 * The operator's view: `/healthz`, `/metrics` and the web console's `routes` and WebSockets over
 * HTTP (behind the access guard: loopback by default, credentials beyond), process metrics, and
 * the health summary emitted on the bus (the outbox publishes it to `<base>/health`).
 */
export function buildHealthParts(ctx: PartContext, web: WebRoutes = {}): Part[] {
  const cfg = ctx.config.http;
  const monitorPart = ctx.part(new ProcessMonitorPart(new ProcessMonitor(ctx.metrics)), { slice: {} });
  const monitor = monitorPart.monitor;
  // Health reaches /healthz and <base>/health: it never carries a secret, whatever a part put in it.
  const summary = (): HealthSummary => {
    return ctx.scrub(
      summarizeHealth({
        deviceId: ctx.config.device_id,
        parts: ctx.health(),
        lag: monitor.lag(),
        lagLimitMs: cfg.event_loop_lag_limit_ms,
        lastReload: ctx.lastReload(),
      }),
    );
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
          access: new AccessGuard({ host: cfg.host, ...(cfg.auth ? { auth: cfg.auth } : {}), allowedOrigins: cfg.allowed_origins }),
          ...(web.routes ? { routes: web.routes } : {}),
          ...(web.upgrades ? { upgrades: web.upgrades } : {}),
          console: (web.routes?.length ?? 0) > 0,
        }),
        // The routes find what they serve when a request comes (the cameras, the history), so a
        // reload that rebuilds those does not restart the endpoint or drop its WebSockets.
        { slice: { ...server, web: web.slice ?? null }, deps: [monitorPart] },
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
