import type { z } from "zod";
import type { CommandName } from "../config/sections/commands.js";
import type { Logger } from "../log/logger.js";
import type { VerifiedStatement } from "./statementCheck.js";

import type { CommandErrorCode } from "../contract/index.js";

export type { CommandErrorCode };

/** An expected failure of a command: becomes an error response with this code, message and details. */
export class CommandError extends Error {
  readonly code: CommandErrorCode;
  readonly details: readonly string[] | undefined;

  constructor(code: CommandErrorCode, message: string, details?: readonly string[]) {
    super(message);
    this.name = "CommandError";
    this.code = code;
    this.details = details;
  }
}

export interface CommandContext {
  /** The request's `id`, echoed as `request_id` in the response. */
  requestId: string;
  log: Logger;
  /** The request's signed statement, when it carried one (already verified, its nonce spent). */
  statement?: VerifiedStatement;
}

/** One remote command: the schema of its parameters and what it does. */
export interface CommandHandler<P = Record<string, unknown>> {
  readonly name: CommandName;
  /** Validates the request's fields other than `id` (a strict object: unknown fields are errors). */
  readonly params: z.ZodType<P>;
  /** Does the work; resolves with the response's `result`, or throws (a CommandError for expected failures). */
  run(params: P, ctx: CommandContext): Promise<Record<string, unknown>>;
  /**
   * Runs after the response was handed to the outbox, for work that must not hold the response
   * back (reload_config restarts the very parts that answer).
   */
  after?(params: P, ctx: CommandContext): void;
}

/**
 * The smallest hook the MQTT connection offers the command dispatcher: a subscription whose
 * messages come back raw. The connection re-subscribes after every reconnect.
 */
export interface CommandSource {
  subscribeCommands(filter: string, onMessage: (topic: string, payload: Buffer) => void): () => void;
}

/** A handler with its parameter type erased, so handlers of different commands share one table. */
export interface BoundCommand {
  readonly name: CommandName;
  /** Validates the fields; on success returns the bound work, on failure every problem found. */
  bind(
    fields: Record<string, unknown>,
  ):
    | { ok: true; run: (ctx: CommandContext) => Promise<Record<string, unknown>>; after: (ctx: CommandContext) => void }
    | { ok: false; problems: string[] };
}

export function bindCommand<P>(h: CommandHandler<P>): BoundCommand {
  return {
    name: h.name,
    bind(fields) {
      const parsed = h.params.safeParse(fields);
      if (!parsed.success) {
        return {
          ok: false,
          problems: parsed.error.issues.map((i) => {
            const where = i.path.length > 0 ? i.path.join(".") : "(payload)";
            return i.code === "unrecognized_keys"
              ? `${where}: unknown field${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}`
              : `${where}: ${i.message}`;
          }),
        };
      }
      const params = parsed.data;
      return { ok: true, run: (ctx) => h.run(params, ctx), after: (ctx) => h.after?.(params, ctx) };
    },
  };
}
