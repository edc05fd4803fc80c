import { z } from "zod";

/** Every command the daemon knows; the `cmd/<name>` topic level. */
export const COMMAND_NAMES = ["reload_config", "update_model", "snapshot", "restart_pipeline"] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

const HOST = z
  .string()
  .regex(
    /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$|^\[?[0-9A-Fa-f:.]+\]?$/,
    'must be a host name, "*.domain" or an IP address',
  );

export const MODEL_UPDATE_SCHEMA = z
  .strictObject({
    public_key: z
      .unknown()
      .refine(() => false, "moved to commands.public_key (it now verifies the signed statement of every command that needs one)")
      .optional()
      .describe("Moved to commands.public_key"),
    allowed_hosts: z
      .array(HOST)
      .default([])
      .describe(
        'Hosts update_model may download from: exact names or "*.example.com" (names below it); empty: none, so update_model refuses every URL until it is set',
      ),
    allowed_schemes: z
      .array(z.enum(["https", "http"]))
      .min(1)
      .default(["https"])
      .describe("URL schemes update_model may download over"),
    allow_private_addresses: z
      .boolean()
      .default(false)
      .describe(
        "Allow downloads from loopback, link-local and private addresses (the device itself, its camera network); checked on the resolved address and on the one actually connected to",
      ),
    min_free_bytes: z
      .number()
      .int()
      .min(0)
      .max(1e12)
      .default(256 * 1024 ** 2)
      .describe("Free space a model download must leave on the data disk; checked before it starts (against its declared size) and while it runs"),
    max_bytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 ** 3)
      .default(1024 ** 3)
      .describe("Largest model file update_model downloads"),
    download_timeout_ms: z.number().int().min(1000).max(3_600_000).default(600_000).describe("Longest a model download may take"),
    probation_ms: z
      .number()
      .int()
      .min(0)
      .max(600_000)
      .default(10_000)
      .describe(
        "After a swap, how long the new model's first runs on real frames are watched; a failed run rolls back to the previous version (0: off)",
      ),
    keep_versions: z
      .number()
      .int()
      .min(2)
      .max(20)
      .default(3)
      .describe("Model versions kept per model under <data_dir>/models (the current and previous are always kept)"),
  })
  .describe("Remote model updates (the update_model command)");

/** Requests per minute per command by default; `unknown` covers every name the device does not know. */
const RATE_LIMITS = { reload_config: 2, update_model: 4, snapshot: 12, restart_pipeline: 6, unknown: 10 } as const;

const perMinute = (name: keyof typeof RATE_LIMITS) =>
  z
    .number()
    .int()
    .min(1)
    .max(6000)
    .default(RATE_LIMITS[name])
    .describe(`Requests a minute accepted for ${name === "unknown" ? "names the device does not know" : name}`);

export const COMMANDS_SCHEMA = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Subscribe to <base>/cmd/+ and answer commands"),
    allow: z
      .array(z.enum(COMMAND_NAMES))
      .default([...COMMAND_NAMES])
      .describe("Commands accepted; any other gets an error response"),
    public_key: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The operators' Ed25519 public key (PEM text or a path to a PEM file) that signed statements are verified with (`cityedge sign` makes them)",
      ),
    signed: z
      .array(z.enum(COMMAND_NAMES))
      .default(["update_model"])
      .describe(
        "Commands that must carry a signed statement (device or fleet, issued_at, expires_at, nonce, signature); without commands.public_key they are refused",
      ),
    fleets: z
      .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 characters of letters, digits, "_", "." or "-"'))
      .default([])
      .describe("Fleets this device belongs to: a statement for one of them is accepted like one for this device"),
    statement_max_validity_s: z
      .number()
      .int()
      .min(60)
      .max(30 * 86_400)
      .default(86_400)
      .describe("Longest validity (expires_at - issued_at) of a signed statement that is accepted"),
    clock_skew_s: z.number().int().min(0).max(3600).default(300).describe("How far this device's clock may be from the signer's"),
    rate_limits: z
      .strictObject({
        reload_config: perMinute("reload_config"),
        update_model: perMinute("update_model"),
        snapshot: perMinute("snapshot"),
        restart_pipeline: perMinute("restart_pipeline"),
        unknown: perMinute("unknown"),
      })
      .prefault({})
      .describe("Requests a minute per command (a token bucket); past it a request is refused with rate_limited"),
    model_update: MODEL_UPDATE_SCHEMA.prefault({}),
  })
  .describe("Remote commands over MQTT (restrict who may publish them with the broker's ACL too)");
