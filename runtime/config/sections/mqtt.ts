import { z } from "zod";
import { durationMs } from "./common.js";

export const MQTT_TLS_SCHEMA = z
  .strictObject({
    ca: z.string().optional().describe("Path to the CA certificate(s) (PEM) that signed the broker's certificate"),
    cert: z.string().optional().describe("Path to the client certificate (PEM), for mutual TLS"),
    key: z.string().optional().describe("Path to the client private key (PEM), for mutual TLS; may be a ${file:...} reference"),
    servername: z.string().optional().describe("TLS server name (SNI) when it differs from the URL's host"),
    reject_unauthorized: z.boolean().default(true).describe("Verify the broker's certificate; never turn off in production"),
  })
  .describe("TLS settings; used when the URL is mqtts:// or wss://");

export const MQTT_SCHEMA = z
  .strictObject({
    url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/[^\s]+$/, "must be a URL starting with mqtt://, mqtts://, ws:// or wss://")
      .default("mqtt://127.0.0.1:1883")
      .describe("Broker URL"),
    protocol_version: z.literal([4, 5]).default(4).describe("MQTT protocol: 4 = 3.1.1, 5 = MQTT 5"),
    client_id: z.string().min(1).max(128).optional().describe('Client id; default "cityedge-<device_id>"'),
    username: z.string().optional().describe("User name"),
    password: z.string().optional().describe("Password; use ${env:NAME} or ${file:/path}"),
    keepalive_s: z.number().int().min(5).max(1200).default(30).describe("Keep-alive interval in seconds"),
    connect_timeout_ms: durationMs(1000, 120000).default(15000).describe("Connection timeout"),
    reconnect_min_ms: durationMs(100, 60000).default(1000).describe("First reconnect delay; doubles per failure, with jitter"),
    reconnect_max_ms: durationMs(1000, 600000).default(30000).describe("Reconnect delay cap"),
    tls: MQTT_TLS_SCHEMA.optional(),
  })
  .describe("The uplink to the city's MQTT broker");

export const BROKER_SCHEMA = z
  .strictObject({
    enabled: z.boolean().default(false).describe("Run an embedded MQTT broker (aedes) in the daemon, for demos and bench work"),
    host: z.string().min(1).default("127.0.0.1").describe("Address the embedded broker binds to"),
    port: z.number().int().min(1).max(65535).default(1883).describe("Port the embedded broker listens on"),
  })
  .describe("Embedded MQTT broker");

export const OUTBOX_SCHEMA = z
  .strictObject({
    max_rows: z
      .number()
      .int()
      .min(100)
      .max(100_000_000)
      .default(1_000_000)
      .describe("Most messages kept while the uplink is down; past it the oldest are dropped and counted"),
    max_bytes: z
      .number()
      .int()
      .min(65536)
      .max(1e12)
      .default(512 * 1024 * 1024)
      .describe("Most payload bytes kept in the outbox"),
    inflight: z.number().int().min(1).max(65535).default(256).describe("Most messages handed to MQTT and not yet acknowledged"),
    max_memory_messages: z
      .number()
      .int()
      .min(100)
      .max(1_000_000)
      .default(10_000)
      .describe(
        "Most messages kept in memory while the outbox cannot commit (a full disk, an unusable file); past it the oldest are dropped, each leaving a gap in seq",
      ),
    max_message_bytes: z
      .number()
      .int()
      .min(1024)
      .max(268_435_455)
      .default(262_144)
      .describe(
        "Largest message accepted (envelope included); larger ones are refused at publish, since a broker that refuses them would stall the queue. AWS IoT Core allows 128 KB",
      ),
    file: z.string().min(1).default("outbox.sqlite").describe("The outbox's SQLite file (relative paths are from data_dir)"),
    synchronous: z
      .enum(["background", "full", "normal"])
      .default("background")
      .describe(
        'SQLite durability: "background" commits without an fsync on the event loop and fsyncs the WAL off it every fsync_interval_ms (a process crash loses nothing committed, a power cut at most that interval); "full" fsyncs every commit on the event loop (blocks it several ms per commit on slow storage); "normal" never fsyncs between checkpoints',
      ),
    fsync_interval_ms: z
      .number()
      .int()
      .min(10)
      .max(60_000)
      .default(100)
      .describe('With synchronous "background": longest time from a commit to its fsync'),
  })
  .describe("The durable SQLite outbox between the pipelines and MQTT");
