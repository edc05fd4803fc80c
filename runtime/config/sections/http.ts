import { z } from "zod";

export const HTTP_SCHEMA = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Serve /healthz and /metrics"),
    host: z.string().min(1).default("127.0.0.1").describe("Bind address; keep it on loopback unless a firewall guards it"),
    port: z.number().int().min(1).max(65535).default(9108).describe("Port"),
  })
  .describe("Health and Prometheus metrics endpoint");
