import type { z } from "zod";
import { COMMAND_PARAMS } from "../contract/index.js";
import type { ModelUpdater } from "../modelUpdate/updater.js";
import type { CommandHandler } from "./types.js";

const PARAMS = COMMAND_PARAMS.update_model;

/** `update_model`: see ModelUpdater for the steps and what each failure leaves running. */
export function updateModelCommand(updater: ModelUpdater): CommandHandler<z.output<typeof PARAMS>> {
  return {
    name: "update_model",
    params: PARAMS,
    run: (params, ctx) => updater.update(params, ctx.log, ctx.statement),
  };
}
