import { z } from "zod";
import { defineMessage } from "../message.js";
import { count, isoMs } from "../fields.js";

export const PART_STATES = ["starting", "running", "degraded", "retrying", "failed", "stopped", "absent"] as const;

const names = (what: string) => z.array(z.string()).describe(what);

/** What one part says about itself; parts add their own detail fields (fps, provider, connected …). */
const PART_HEALTH = z
  .looseObject({
    state: z
      .enum(PART_STATES)
      .describe(
        "retrying: it failed and is started again at supervisor.retry_at; failed: it failed more often than supervision.max_restarts within supervision.window_ms (still retried)",
      ),
    error: z.string().optional().describe("The last error, free of credentials"),
    supervisor: z
      .strictObject({
        restarts: count("Failures the daemon answered with a restart, over the part's life"),
        recent_failures: count("Failures within the restart policy's window"),
        retry_at: isoMs().optional().describe("When the next start is due, while one waits"),
      })
      .optional()
      .describe("Present once the daemon had to restart the part"),
  })
  .describe("What one part says about itself; parts add their own detail fields (fps, provider, connected …)");

const partMap = (description: string) => z.record(z.string(), PART_HEALTH).describe(description);
const ms = () => z.number().min(0);

export const HEALTH = defineMessage({
  name: "health",
  channel: "health",
  operation: "publishHealth",
  title: "Health",
  description:
    "Periodic health report on <base>/health; /healthz serves the same object without the envelope (HTTP 200 when state is ok, 503 when degraded).",
  summary: "Periodic health (every `http.health_publish_ms`): parts, cameras, meters, execution provider, outbox depth and drops.",
  v: 1,
  address: "{topic_prefix}/{device_id}/health",
  urgent: true,
  body: z.strictObject({
    state: z.enum(["ok", "degraded"]).describe("ok when every part runs and the event loop keeps up"),
    version: z.string().describe("cityedge version"),
    uptime_s: count(),
    rss_bytes: count("Resident memory of the daemon"),
    event_loop_lag_ms: z.strictObject({ p50_ms: ms(), p99_ms: ms(), max_ms: ms() }),
    outbox: z
      .strictObject({
        depth: count("Messages waiting for the broker's acknowledgement"),
        bytes: count(),
        dropped: count(
          "Messages dropped (the outbox quota, a full disk, refused by the broker) in this epoch; each one's seq is skipped, so subscribers see it as a gap",
        ),
        disk_full: z.boolean().describe("True while the outbox cannot commit because the data file system is full"),
        free_bytes: count("Free space on the file system holding the outbox").optional(),
        oldest_age_s: z
          .number()
          .min(0)
          .optional()
          .describe("Seconds since the oldest message still waiting was made (its ts); absent when none waits on disk"),
        epoch: z.string().optional().describe("The sequence epoch the device numbers its messages in"),
      })
      .optional(),
    mqtt: PART_HEALTH.describe("The uplink; state absent when no MQTT part runs"),
    cameras: partMap("Per camera id"),
    meters: partMap("Per meter id"),
    models: partMap("Per model id (execution provider, variant)"),
    forecasts: partMap(
      "Per forecast series id: candidate, chosen_at, backtest {mae, mape, days, origins}, step_s, source_step_s, horizon, published, skipped, skipped_by_reason {gap, missing, no_history, scaling, step}, last_skip_reason, errors, last_error, model_error",
    ),
    parts: partMap("Every part of the daemon by name"),
    problems: z.array(z.string()).describe("Why the state is degraded, one line each"),
    last_reload: z
      .strictObject({
        at: isoMs("When the reload finished"),
        outcome: z.enum(["applied", "rejected", "rolled_back"]),
        config: z.string().describe("The config file"),
        problems: names("rejected: why, one line each (FILE:LINE:COL key: message)").optional(),
        failed: z
          .array(z.strictObject({ part: z.string(), error: z.string() }))
          .optional()
          .describe("rolled_back: the parts of the new config that failed to start"),
        restarted: names("Parts stopped and started anew (their settings, or a part they hold, changed)").optional(),
        started: names("Parts only the new config has").optional(),
        stopped: names("Parts only the old config had").optional(),
        kept: names("Parts left running untouched").optional(),
        in_place: names("Settings applied without a restart (log_level, supervision)").optional(),
      })
      .optional()
      .describe("The last config reload (SIGHUP, reload_config): what it restarted, or why it was rejected or rolled back"),
  }),
  topic: (t) => t.health(),
});

export type HealthBody = z.output<typeof HEALTH.body>;
