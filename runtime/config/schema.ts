import { z } from "zod";
import { CAMERAS_SCHEMA, LIVE_VIEW_SCHEMA } from "./sections/cameras.js";
import { COMMANDS_SCHEMA } from "./sections/commands.js";
import { id } from "./sections/common.js";
import { checkForecastSources, FORECASTS_SCHEMA } from "./sections/forecasts.js";
import { HTTP_SCHEMA } from "./sections/http.js";
import { HISTORY_SCHEMA, METERS_SCHEMA } from "./sections/meters.js";
import { MODELS_SCHEMA } from "./sections/models.js";
import { BROKER_SCHEMA, MQTT_SCHEMA, OUTBOX_SCHEMA } from "./sections/mqtt.js";
import { SUPERVISION_SCHEMA } from "./sections/supervision.js";

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"] as const;

const OBJECT_SCHEMA = z.strictObject({
  device_id: id("device_id").describe("This device's id; the second level of every MQTT topic"),
  topic_prefix: z
    .string()
    .regex(
      /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/,
      'must be topic levels of letters, digits, "_", "." or "-" separated by "/" (no "+", "#" or empty levels)',
    )
    .default("cityedge")
    .describe("First level(s) of every MQTT topic"),
  log_level: z.enum(LOG_LEVELS).default("info").describe("Log level; CITYEDGE__LOG_LEVEL overrides it"),
  data_dir: z.string().min(1).default("./data").describe("Where the outbox, history and model cache live (relative paths are from the config file)"),
  mqtt: MQTT_SCHEMA.prefault({}),
  broker: BROKER_SCHEMA.prefault({}),
  outbox: OUTBOX_SCHEMA.prefault({}),
  http: HTTP_SCHEMA.prefault({}),
  commands: COMMANDS_SCHEMA.prefault({}),
  cameras: CAMERAS_SCHEMA,
  ffmpeg_path: z
    .string()
    .min(1)
    .optional()
    .describe("ffmpeg binary for the cameras (default: `ffmpeg` on PATH, else the one from the @ffmpeg-installer/ffmpeg package)"),
  live_view: LIVE_VIEW_SCHEMA.prefault({}),
  models: MODELS_SCHEMA,
  meters: METERS_SCHEMA,
  forecasts: FORECASTS_SCHEMA,
  history: HISTORY_SCHEMA.prefault({}),
  supervision: SUPERVISION_SCHEMA.prefault({}),
});

type Raw = z.output<typeof OBJECT_SCHEMA>;

/** Cross-section checks also run when other sections have errors, so they see input that may be malformed. */
const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]).filter((x) => x !== null && typeof x === "object") : []);

function uniqueIds(ctx: z.RefinementCtx, items: readonly { id?: unknown }[], section: string): void {
  const seen = new Map<unknown, number>();
  items.forEach((item, i) => {
    if (typeof item.id !== "string") return;
    const first = seen.get(item.id);
    if (first !== undefined) {
      ctx.addIssue({ code: "custom", path: [section, i, "id"], message: `duplicate id "${item.id}" (also ${section}[${first}])` });
    } else {
      seen.set(item.id, i);
    }
  });
}

/** Checks that span sections: references between them and resources they would both claim. */
function crossCheck(cfg: Raw, ctx: z.RefinementCtx): void {
  const cameras = list<Partial<Raw["cameras"][number]>>(cfg.cameras);
  const models = list<Partial<Raw["models"][number]>>(cfg.models);
  const forecasts = list<Partial<Raw["forecasts"][number]>>(cfg.forecasts);
  uniqueIds(ctx, cameras, "cameras");
  uniqueIds(ctx, models, "models");
  uniqueIds(ctx, list(cfg.meters), "meters");
  uniqueIds(ctx, forecasts, "forecasts");
  checkForecastSources(forecasts, list(cfg.meters), cameras, ctx);
  cameras.forEach((c, i) => {
    const b = c.backoff as Partial<Raw["cameras"][number]["backoff"]> | undefined;
    if (typeof b?.initial_ms === "number" && typeof b.max_ms === "number" && b.initial_ms > b.max_ms) {
      ctx.addIssue({
        code: "custom",
        path: ["cameras", i, "backoff", "initial_ms"],
        message: `must not exceed backoff.max_ms (${b.max_ms}), got ${b.initial_ms}`,
      });
    }
  });
  const modelIds = new Set(models.map((m) => m.id));
  const known = [...modelIds].join(", ") || "none defined";
  cameras.forEach((c, i) => {
    if (typeof c.model === "string" && !modelIds.has(c.model)) {
      ctx.addIssue({ code: "custom", path: ["cameras", i, "model"], message: `unknown model "${c.model}" (models: ${known})` });
    }
  });
  forecasts.forEach((f, i) => {
    if (typeof f.model === "string" && !modelIds.has(f.model)) {
      ctx.addIssue({ code: "custom", path: ["forecasts", i, "model"], message: `unknown model "${f.model}" (models: ${known})` });
    }
  });
  const broker = cfg.broker as Partial<Raw["broker"]> | undefined;
  const http = cfg.http as Partial<Raw["http"]> | undefined;
  const mqtt = (cfg.mqtt ?? {}) as Partial<Raw["mqtt"]>;
  if (broker?.enabled === true && http?.enabled !== false && broker.port !== undefined && broker.port === http?.port && broker.host === http.host) {
    ctx.addIssue({ code: "custom", path: ["broker", "port"], message: `port ${broker.port} is also http.port; pick another` });
  }
  const live = cfg.live_view as Partial<Raw["live_view"]> | undefined;
  if (live?.enabled === true && live.port !== undefined) {
    const taken = [
      http?.enabled !== false && http?.port === live.port ? "http.port" : undefined,
      broker?.enabled === true && broker.port === live.port ? "broker.port" : undefined,
    ].filter((k) => k !== undefined);
    if (taken.length > 0)
      ctx.addIssue({ code: "custom", path: ["live_view", "port"], message: `port ${live.port} is also ${taken.join(" and ")}; pick another` });
  }
  const sup = cfg.supervision as Partial<Raw["supervision"]> | undefined;
  if (typeof sup?.initial_ms === "number" && typeof sup.max_ms === "number" && sup.initial_ms > sup.max_ms) {
    ctx.addIssue({
      code: "custom",
      path: ["supervision", "initial_ms"],
      message: `must not exceed supervision.max_ms (${sup.max_ms}), got ${sup.initial_ms}`,
    });
  }
  if (typeof mqtt.reconnect_min_ms === "number" && typeof mqtt.reconnect_max_ms === "number" && mqtt.reconnect_min_ms > mqtt.reconnect_max_ms) {
    ctx.addIssue({
      code: "custom",
      path: ["mqtt", "reconnect_min_ms"],
      message: `must not exceed mqtt.reconnect_max_ms (${mqtt.reconnect_max_ms}), got ${mqtt.reconnect_min_ms}`,
    });
  }
  const tls = mqtt.tls && typeof mqtt.tls === "object" ? mqtt.tls : undefined;
  if (tls && (tls.cert === undefined) !== (tls.key === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["mqtt", "tls", tls.cert === undefined ? "key" : "cert"],
      message: "cert and key go together for mutual TLS; set both or neither",
    });
  }
  if (tls && typeof mqtt.url === "string" && /^(mqtt|ws):/.test(mqtt.url)) {
    ctx.addIssue({ code: "custom", path: ["mqtt", "tls"], message: `TLS settings need an mqtts:// or wss:// url, got "${mqtt.url}"` });
  }
}

/**
 * The one source of truth for the config file: the TypeScript type, the defaults, the
 * validation and the reference in docs/configuration.md all come from here.
 */
export const CONFIG_SCHEMA = OBJECT_SCHEMA.superRefine(crossCheck, {
  when: (payload) => payload.value !== null && typeof payload.value === "object",
});

export type Config = z.output<typeof CONFIG_SCHEMA>;
export type ConfigInput = z.input<typeof CONFIG_SCHEMA>;
/** The object part of the schema, before the cross-section checks: walk this one for keys. */
export const CONFIG_OBJECT_SCHEMA = OBJECT_SCHEMA;
