import type { PartHealth } from "../part.js";
import type { LastReload } from "../supervise/reload.js";
import { packageVersion } from "../version.js";

/** What /healthz answers and what goes to `<base>/health`; see runtime/contract/schemas/health.schema.json. */
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
  outbox?: { depth: number; bytes: number; dropped: number; disk_full: boolean; free_bytes?: number; epoch?: string };
  /** The uplink, from the MQTT part's health; `{ state: "absent" }` when no MQTT part runs. */
  mqtt: PartHealth | { state: "absent" };
  cameras: Record<string, PartHealth>;
  meters: Record<string, PartHealth>;
  models: Record<string, PartHealth>;
  /** Per forecast series, from the forecasts part's `series`. */
  forecasts: Record<string, PartHealth>;
  /** Every part by name, as it reports itself. */
  parts: Record<string, PartHealth>;
  /** Why the state is degraded, one line each; empty when ok. */
  problems: string[];
  /** The last config reload (SIGHUP, reload_config, the console): what it restarted, or why it was rejected or rolled back. */
  last_reload?: LastReload;
}

export interface SummaryInput {
  deviceId: string;
  parts: Record<string, PartHealth>;
  lag: HealthSummary["event_loop_lag_ms"];
  lagLimitMs: number;
  lastReload?: LastReload | undefined;
}

/** Part names the other features use: "camera:<id>", "meter:<id>", "detector:<model id>", "mqtt". */
const KIND = /^(camera|meter|model|detector)s?[:/](.+)$/;

/** Parts may report nested per-item health, e.g. `{ cameras: { gate: {state…} } }`: lift those out too. */
function nested(h: PartHealth, key: string): Record<string, PartHealth> {
  const v = h[key];
  if (v === null || typeof v !== "object" || Array.isArray(v)) return {};
  const out: Record<string, PartHealth> = {};
  for (const [id, item] of Object.entries(v as Record<string, unknown>)) {
    if (item !== null && typeof item === "object" && typeof (item as PartHealth).state === "string") out[id] = item as PartHealth;
  }
  return out;
}

export function summarizeHealth(input: SummaryInput): HealthSummary {
  const cameras: Record<string, PartHealth> = {};
  const meters: Record<string, PartHealth> = {};
  const models: Record<string, PartHealth> = {};
  const forecasts: Record<string, PartHealth> = {};
  const groups = { camera: cameras, meter: meters, model: models, detector: models };
  let mqtt: HealthSummary["mqtt"] = { state: "absent" };
  const problems: string[] = [];
  const nestedItems: [string, string, PartHealth][] = [];
  for (const [name, h] of Object.entries(input.parts)) {
    const m = KIND.exec(name);
    if (m) groups[m[1] as keyof typeof groups][m[2]!] = h;
    else if (name === "mqtt") mqtt = h;
    for (const [key, kind, group] of [
      ["cameras", "camera", cameras],
      ["meters", "meter", meters],
      ["models", "model", models],
      ["series", "forecast", forecasts],
    ] as const) {
      for (const [id, item] of Object.entries(nested(h, key))) {
        group[id] = item;
        nestedItems.push([kind, id, item]);
      }
    }
    if (h.state !== "running") problems.push(`${name} is ${h.state}${h.error ? `: ${h.error}` : ""}`);
  }
  // Items inside a part (each meter of "meters") are named too: the part alone says only "degraded".
  for (const [kind, id, h] of nestedItems) {
    if (h.state !== "running") problems.push(`${kind} ${id} is ${h.state}${h.error ? `: ${h.error}` : ""}`);
  }
  const ob = input.parts.outbox;
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  const outbox = ob
    ? {
        depth: num(ob.depth),
        bytes: num(ob.bytes),
        dropped: num(ob.dropped),
        disk_full: ob.disk_full === true,
        ...(typeof ob.free_bytes === "number" ? { free_bytes: ob.free_bytes } : {}),
        ...(typeof ob.epoch === "string" && ob.epoch !== "" ? { epoch: ob.epoch } : {}),
      }
    : undefined;
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
    parts: input.parts,
    problems,
    ...(input.lastReload ? { last_reload: input.lastReload } : {}),
  };
}
