import { z } from "zod";

/** Every command the daemon knows; the `cmd/<name>` topic level. */
export const COMMAND_NAMES = ["reload_config", "update_model", "snapshot", "restart_pipeline"] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export const MODEL_UPDATE_SCHEMA = z
  .strictObject({
    public_key: z
      .string()
      .min(1)
      .optional()
      .describe("Ed25519 public key (PEM text or a path to a PEM file); when set, update_model requires a valid `signature` of the model file"),
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

export const COMMANDS_SCHEMA = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Subscribe to <base>/cmd/+ and answer commands"),
    allow: z
      .array(z.enum(COMMAND_NAMES))
      .default([...COMMAND_NAMES])
      .describe("Commands accepted; any other gets an error response"),
    model_update: MODEL_UPDATE_SCHEMA.prefault({}),
  })
  .describe("Remote commands over MQTT (restrict who may publish them with the broker's ACL too)");
