import { z } from "zod";

export const HTTP_SCHEMA = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Serve /healthz and /metrics"),
    host: z.string().min(1).default("127.0.0.1").describe("Bind address; keep it on loopback unless a firewall guards it"),
    port: z.number().int().min(1).max(65535).default(9108).describe("Port"),
    health_publish_ms: z
      .number()
      .int()
      .refine((v) => v === 0 || (v >= 1000 && v <= 3_600_000), "must be 0 (off) or 1000..3600000")
      .default(30_000)
      .describe("How often the health summary is published to <base>/health (0 turns it off; independent of `enabled`)"),
    event_loop_lag_limit_ms: z
      .number()
      .int()
      .min(50)
      .max(600_000)
      .default(5000)
      .describe("Event-loop lag (p99 over the last minute) above which /healthz answers 503"),
  })
  .describe("Health and Prometheus metrics endpoint");
