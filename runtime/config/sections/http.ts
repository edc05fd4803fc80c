import { z } from "zod";

/** Host names and addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

const ORIGIN = z.string().regex(/^https?:\/\/[^/\s]+$/, 'must be an origin: scheme://host[:port] with no path, e.g. "https://ops.example.net"');

export const HTTP_AUTH_SCHEMA = z
  .strictObject({
    token: z
      .string()
      .min(16, "must be at least 16 characters")
      .optional()
      .describe(
        "Bearer token: `Authorization: Bearer TOKEN`, or typed once into the console's login page. Must be a ${env:NAME} or ${file:PATH} reference",
      ),
    user: z.string().min(1).optional().describe("User name for HTTP basic auth (with `password`)"),
    password: z
      .string()
      .min(8, "must be at least 8 characters")
      .optional()
      .describe("Password for HTTP basic auth (with `user`). Must be a ${env:NAME} or ${file:PATH} reference"),
  })
  .describe("Who may use the HTTP endpoint and the console; required when `host` is not a loopback address");

/** Keys whose values must come from `${env:}`/`${file:}` references (or environment overrides), never be written in the file. */
export const HTTP_REFERENCE_ONLY_KEYS = ["http.auth.token", "http.auth.password"] as const;

export const HTTP_SCHEMA = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Serve /healthz, /metrics and the web console"),
    host: z.string().min(1).default("127.0.0.1").describe("Bind address; any address other than loopback needs `auth`"),
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
    console: z.boolean().default(true).describe("Serve the web console (live cameras, line editor, charts, health) at /"),
    auth: HTTP_AUTH_SCHEMA.optional(),
    allowed_origins: z
      .array(ORIGIN)
      .max(16)
      .default([])
      .describe("Origins besides the endpoint's own whose pages may open its WebSockets and change settings (a reverse proxy's public origin)"),
  })
  .superRefine((http, ctx) => {
    const auth = http.auth;
    if (auth && (auth.user === undefined) !== (auth.password === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["auth", auth.user === undefined ? "password" : "user"],
        message: "user and password go together for basic auth; set both or neither",
      });
    }
    if (auth && auth.token === undefined && auth.password === undefined && auth.user === undefined) {
      ctx.addIssue({ code: "custom", path: ["auth"], message: "needs a token, or a user and password" });
    }
    if (http.enabled && !isLoopbackHost(http.host) && auth === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["host"],
        message: `"${http.host}" is reachable from other machines: set http.auth (a token, or a user and password, from \${env:NAME} or \${file:PATH})`,
      });
    }
  })
  .describe("Health, Prometheus metrics and the web console");

export type HttpConfig = z.output<typeof HTTP_SCHEMA>;
export type HttpAuthConfig = z.output<typeof HTTP_AUTH_SCHEMA>;
