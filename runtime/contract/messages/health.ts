import { z } from "zod";
import { defineMessage } from "../message.js";
import { count } from "../fields.js";

export const PART_STATES = ["starting", "running", "degraded", "failed", "stopped", "absent"] as const;

/** What one part says about itself; parts add their own detail fields (fps, provider, connected …). */
const PART_HEALTH = z
  .looseObject({
    state: z.enum(PART_STATES),
    error: z.string().optional().describe("The last error, free of credentials"),
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
        dropped: count("Messages dropped by the outbox quota since the outbox file was created"),
      })
      .optional(),
    mqtt: PART_HEALTH.describe("The uplink; state absent when no MQTT part runs"),
    cameras: partMap("Per camera id"),
    meters: partMap("Per meter id"),
    models: partMap("Per model id (execution provider, variant)"),
    parts: partMap("Every part of the daemon by name"),
    problems: z.array(z.string()).describe("Why the state is degraded, one line each"),
  }),
  topic: (t) => t.health(),
});

export type HealthBody = z.output<typeof HEALTH.body>;
