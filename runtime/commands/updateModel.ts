import { z } from "zod";
import { VARIANTS } from "../inference/manifest.js";
import type { ModelUpdater } from "../modelUpdate/updater.js";
import type { CommandHandler } from "./types.js";

const PARAMS = z.strictObject({
  model: z.string().min(1),
  url: z.string().regex(/^https?:\/\/\S+$/, "must be an http:// or https:// URL"),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits"),
  signature: z
    .string()
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, "must be base64")
    .optional(),
  variant: z.enum(VARIANTS).optional(),
});

/** `update_model`: see ModelUpdater for the steps and what each failure leaves running. */
export function updateModelCommand(updater: ModelUpdater): CommandHandler<z.output<typeof PARAMS>> {
  return {
    name: "update_model",
    params: PARAMS,
    run: (params, ctx) => updater.update(params, ctx.log),
  };
}
