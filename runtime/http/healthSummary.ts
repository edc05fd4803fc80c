import type { MeterHealth } from "../../drivers/meter/meter.js";
import type { PartHealth } from "../part.js";
import type { PartHealthByKind, PartReport } from "../partHealth.js";
import type { LastReload } from "../supervise/reload.js";
import { packageVersion } from "../version.js";

/** A camera in the summary: its own health, and its detection pipeline's when it runs one. */
export type CameraSummary = PartHealthByKind["camera"] & { detection?: PartHealthByKind["pipeline"] };

/** What /healthz answers and what goes to `<base>/health`; see runtime/contract/messages/health.ts. */
export interface HealthSummary {
  /** "ok" when every part runs and the event loop keeps up (HTTP 200), else "degraded" (HTTP 503). */
  state: "ok" | "degraded";
  device_id: string;
  version: string;
  uptime_s: number;
  rss_bytes: number;
  event_loop_lag_ms: { p50_ms: number; p99_ms: number; max_ms: number };
  /**
   * The durable outbox: depth and bytes waiting, messages dropped (quota, full disk), whether it
   * cannot commit because the disk is full, and the free space on the data file system.
   */
  outbox?: { depth: number; bytes: number; dropped: number; disk_full: boolean; free_bytes?: number; oldest_age_s?: number; epoch?: string };
  /** The uplink, from the MQTT part's health; `{ state: "absent" }` when no MQTT part runs. */
  mqtt: PartHealthByKind["mqtt"] | { state: "absent" };
  /** Per camera id: the camera part, with its pipeline's health as `detection`. */
  cameras: Record<string, CameraSummary>;
  /** Per meter id, from the meters part. */
  meters: Record<string, MeterHealth>;
  /** Per model id: its detector. */
  models: Record<string, PartHealthByKind["detector"]>;
  /** Per forecast series, from the forecasts part's `series`. */
  forecasts: Record<string, PartHealthByKind["forecast"]["series"][string]>;
  /** Every part by name, as it reports itself. */
  parts: Record<string, PartHealth>;
  /** Why the state is degraded, one line each; empty when ok. */
  problems: string[];
  /** The last config reload (SIGHUP, reload_config, the console): what it restarted, or why it was rejected or rolled back. */
  last_reload?: LastReload;
}

export interface SummaryInput {
  deviceId: string;
  /** Every part's report (Daemon.report()). */
  parts: readonly PartReport[];
  lag: HealthSummary["event_loop_lag_ms"];
  lagLimitMs: number;
  lastReload?: LastReload | undefined;
}

const problem = (what: string, h: PartHealth) => `${what} is ${h.state}${h.error ? `: ${h.error}` : ""}`;

/** Sorts the parts' reports into cameras, meters, models and the uplink by their kind, and says what is wrong. */
export function summarizeHealth(input: SummaryInput): HealthSummary {
  const cameras: Record<string, CameraSummary> = {};
  const detection: Record<string, PartHealthByKind["pipeline"]> = {};
  const meters: Record<string, MeterHealth> = {};
  const models: Record<string, PartHealthByKind["detector"]> = {};
  const forecasts: HealthSummary["forecasts"] = {};
  const parts: Record<string, PartHealth> = {};
  let mqtt: HealthSummary["mqtt"] = { state: "absent" };
  let outbox: HealthSummary["outbox"];
  const problems: string[] = [];
  // Items inside a part (each meter of "meters", each series of "forecasts") are named too: the part alone says only "degraded".
  const itemProblems: string[] = [];
  for (const r of input.parts) {
    parts[r.name] = r.health;
    const id = r.id ?? r.name;
    switch (r.kind) {
      case "camera":
        cameras[id] = r.health;
        break;
      case "pipeline":
        detection[id] = r.health;
        break;
      case "detector":
        models[id] = r.health;
        break;
      case "meters":
        for (const [meterId, m] of Object.entries(r.health.meters ?? {})) {
          meters[meterId] = m;
          if (m.state !== "running") itemProblems.push(problem(`meter ${meterId}`, m));
        }
        break;
      case "forecast":
        for (const [seriesId, f] of Object.entries(r.health.series ?? {})) {
          forecasts[seriesId] = f;
          if (f.state !== "running") itemProblems.push(problem(`forecast ${seriesId}`, f));
        }
        break;
      case "mqtt":
        mqtt = r.health;
        break;
      case "outbox":
        outbox = {
          depth: r.health.depth,
          bytes: r.health.bytes,
          dropped: r.health.dropped,
          disk_full: r.health.disk_full,
          ...(r.health.free_bytes !== undefined ? { free_bytes: r.health.free_bytes } : {}),
          ...(r.health.oldest_age_s !== undefined ? { oldest_age_s: r.health.oldest_age_s } : {}),
          ...(r.health.epoch ? { epoch: r.health.epoch } : {}),
        };
        break;
      case "broker":
      case "history":
      case "history-recorder":
      case "live-view":
      case "http":
      case "health-publisher":
      case "process":
      case "commands":
      case "console":
      case "other":
        break;
    }
    if (r.health.state !== "running") problems.push(problem(r.name, r.health));
  }
  for (const [id, d] of Object.entries(detection)) if (cameras[id]) cameras[id] = { ...cameras[id], detection: d };
  problems.push(...itemProblems);
  if (input.lag.p99_ms > input.lagLimitMs) problems.push(`event-loop lag p99 ${input.lag.p99_ms} ms is over the limit of ${input.lagLimitMs} ms`);
  return {
    state: problems.length === 0 ? "ok" : "degraded",
    device_id: input.deviceId,
    version: packageVersion(),
    uptime_s: Math.round(process.uptime()),
    rss_bytes: process.memoryUsage.rss(),
    event_loop_lag_ms: input.lag,
    ...(outbox ? { outbox } : {}),
    mqtt,
    cameras,
    meters,
    models,
    forecasts,
    parts,
    problems,
    ...(input.lastReload ? { last_reload: input.lastReload } : {}),
  };
}
