import { z } from "zod";
import type { CommandName } from "../../config/sections/commands.js";
import { VARIANTS } from "../../inference/manifest.js";
import { entityId } from "../fields.js";

/** Longest request id echoed back; longer ones are refused as malformed. */
export const MAX_REQUEST_ID = 128;

/** Envelope fields a sender may add (the cloud's own envelope); they are accepted and ignored, not parameters. */
export const SENDER_ENVELOPE_KEYS = ["id", "v", "ts", "device_id", "epoch", "seq"] as const;

const isoUtc = (what: string) =>
  z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/, "must be ISO 8601 UTC, e.g. 2026-03-01T12:00:00Z")
    .optional()
    .describe(what);

/**
 * The signed statement's fields, which every command may carry (and those in `commands.signed`
 * must): the signature covers the command's name and every field but `id`, `signature`, the
 * sender's envelope and the ones a command leaves unsigned (update_model's `url`).
 */
export const STATEMENT_PARAMS = {
  device: entityId("The device the statement is for (this one); or `fleet`").optional(),
  fleet: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
    .optional()
    .describe("The fleet the statement is for (one of commands.fleets); or `device`"),
  issued_at: isoUtc("When the statement was signed"),
  expires_at: isoUtc("When it stops being accepted (at most commands.statement_max_validity_s after issued_at)"),
  nonce: z
    .string()
    .regex(/^[A-Za-z0-9_-]{16,128}$/)
    .optional()
    .describe("Unique per statement: a statement whose nonce was accepted before is refused (a replay)"),
  signature: z
    .string()
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, "must be base64")
    .optional()
    .describe("Base64 Ed25519 signature of the canonical statement, by commands.public_key's private key (`cityedge sign` makes it)"),
};

/**
 * The parameters of every command (a request's fields other than its envelope), each a strict
 * object: unknown fields are refused. The command handlers validate with these.
 */
export const COMMAND_PARAMS = {
  reload_config: z
    .strictObject({ ...STATEMENT_PARAMS })
    .describe(
      "Re-read the config file: validate, then apply by difference (as SIGHUP: only the parts whose settings changed restart), roll back when a new part fails to start, or reject with every problem. No parameters.",
    ),
  update_model: z
    .strictObject({
      ...STATEMENT_PARAMS,
      model: z.string().min(1).describe("A model id from the config's models"),
      url: z
        .string()
        .regex(/^https?:\/\/\S+$/, "must be an http:// or https:// URL")
        .describe("Where to download it; not signed (the sha256 pins the file); limited by commands.model_update.allowed_hosts and allowed_schemes"),
      sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits"),
      variant: z.enum(VARIANTS).optional().describe("The manifest variant the file stands for (default fp32)"),
      version: z
        .string()
        .regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/)
        .optional()
        .describe(
          "The model's version; with a signed statement it must be newer than the newest accepted for this model (versions compare as dotted numbers)",
        ),
      allow_downgrade: z.boolean().optional().describe("Signed: accept a version older than the newest accepted (a deliberate rollback)"),
    })
    .describe("Download, verify, warm up and swap in a model file; the previous version is kept and restored when the new one fails."),
  snapshot: z
    .strictObject({
      ...STATEMENT_PARAMS,
      camera: z.string().min(1),
      quality: z.number().int().min(10).max(100).default(80).describe("JPEG quality, default 80"),
      boxes: z
        .boolean()
        .default(false)
        .describe("Draw the detections of the pictured frame (label, track id, score) and the camera's counting lines and zones; default false"),
    })
    .describe(
      "A JPEG of a camera's newest picture: at the camera's own resolution when it writes stills (cameras[].still_interval_s), else the model-size frame without the letterbox padding.",
    ),
  restart_pipeline: z.strictObject({ ...STATEMENT_PARAMS, camera: z.string().min(1) }).describe("Restart one camera's pipeline."),
} satisfies Record<CommandName, z.ZodObject>;

export type CommandParams<N extends CommandName> = z.output<(typeof COMMAND_PARAMS)[N]>;

const requestId = () => z.string().min(1).max(MAX_REQUEST_ID).describe("Chosen by the sender; echoed as request_id in the response");

/** The fields every request has: its id, and the sender's own envelope fields (ignored). */
export const COMMAND_REQUEST = z.looseObject({ id: requestId() });

/** A whole request of one command, as a sender writes it. */
export function commandRequestSchema(name: CommandName): z.ZodObject {
  const ignored = {
    v: z.unknown().optional(),
    ts: z.unknown().optional(),
    device_id: z.unknown().optional(),
    epoch: z.unknown().optional(),
    seq: z.unknown().optional(),
  };
  const params = COMMAND_PARAMS[name];
  return z.strictObject({ id: requestId(), ...ignored, ...params.shape }).describe(params.description ?? name);
}

/** The inbound command channel, for the generated AsyncAPI document and `schemas/cmd.schema.json`. */
export const COMMAND = {
  name: "cmd",
  channel: "command",
  operation: "receiveCommand",
  title: "Command",
  description:
    "A command the cloud sends on <base>/cmd/<name>. It has no envelope (the daemon does not make it); `v`, `ts`, `device_id`, `epoch` and `seq` are accepted and ignored. Every other field is a parameter of the command; unknown parameters are refused. Payloads over 64 KiB are refused. A command in the device's `commands.signed` (update_model by default) must carry a signed statement (`device` or `fleet`, `issued_at`, `expires_at`, `nonce`, `signature`), verified before anything of it runs; replays (a nonce seen before) and, for update_model, downgrades are refused. Each command is rate limited (`commands.rate_limits`).",
  summary: "A command to the device (the daemon subscribes to `<base>/cmd/+` at QoS 1).",
  address: "{topic_prefix}/{device_id}/cmd/{name}",
} as const;
