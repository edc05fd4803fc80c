import { COMMAND_NAMES, type CommandName } from "../config/sections/commands.js";
import { MAX_REQUEST_ID, SENDER_ENVELOPE_KEYS, type CommandResponseBody } from "../contract/index.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { DaemonBus } from "../events/events.js";
import type { Topics } from "../mqtt/topics.js";
import type { Part, PartHealth } from "../part.js";
import { ThrottledLog } from "../disk/throttledLog.js";
import type { RateLimiter } from "./rateLimit.js";
import { checkStatement, type StatementPolicy, type VerifiedStatement } from "./statementCheck.js";
import { CommandError, type BoundCommand, type CommandErrorCode, type CommandSource } from "./types.js";

export interface DispatcherOptions {
  topics: Topics;
  /** Responses are emitted here. */
  bus: DaemonBus;
  source: CommandSource;
  log: Logger;
  metrics: Metrics;
  /** Commands accepted (config `commands.allow`). */
  allow: readonly CommandName[];
  commands: readonly BoundCommand[];
  /** Problems found while building the commands (e.g. a bad public key); they make health degraded. */
  problems?: readonly string[];
  /** Who may sign statements, and which commands need one; without it no statement is checked. */
  statements?: StatementPolicy;
  /** Requests a minute per command; without it there is no limit. */
  rateLimiter?: RateLimiter;
  /** Takes secrets out of a response before it leaves (the daemon's scrubber); without it, responses go as they are. */
  scrub?: <T>(value: T) => T;
  /** Called first thing in start() (leftovers of an interrupted model download are removed there). */
  onStart?: () => void;
  /** Called first thing in stop(), to cut long work short (a model download). */
  onStop?: () => void;
}

/** Largest command payload accepted; commands carry parameters, never data. */
const MAX_PAYLOAD = 64 * 1024;

/** The commands in health: how many were handled, which run now, the last refusal. */
export type CommandsHealth = PartHealth & { handled: number; dropped: number; running: string[]; last_error?: string };

/**
 * Answers `<base>/cmd/<name>` on `<base>/cmd/<name>/response`: validates the request, runs the
 * command, and reports `ok` or an error with the request's id. Nothing a sender publishes can
 * crash it: every failure becomes an error response.
 */
export class CommandDispatcher implements Part {
  readonly name = "commands";
  readonly kind = "commands";
  readonly #opts: DispatcherOptions;
  readonly #log: Logger;
  readonly #commands: Map<string, BoundCommand>;
  readonly #running = new Map<string, Promise<void>>();
  #unsubscribe: (() => void) | undefined;
  #handled = 0;
  #dropped = 0;
  #lastError: string | undefined;
  readonly #flood: ThrottledLog;

  constructor(opts: DispatcherOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#commands = new Map(opts.commands.map((c) => [c.name, c]));
    this.#flood = new ThrottledLog(opts.log);
  }

  async start(): Promise<void> {
    this.#opts.onStart?.();
    const filter = this.#opts.topics.commandFilter();
    this.#unsubscribe = this.#opts.source.subscribeCommands(filter, (topic, payload) => void this.handle(topic, payload));
    this.#log.info({ filter, allow: this.#opts.allow }, "listening for commands");
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#opts.onStop?.();
    // Let running commands answer; the daemon bounds how long a part may take to stop.
    await Promise.allSettled([...this.#running.values()]);
  }

  health(): CommandsHealth {
    const problems = this.#opts.problems ?? [];
    const state = !this.#unsubscribe ? "stopped" : problems.length > 0 ? "degraded" : "running";
    return {
      state,
      ...(problems.length > 0 ? { error: problems.join("; ") } : {}),
      handled: this.#handled,
      dropped: this.#dropped,
      running: [...this.#running.keys()],
      ...(this.#lastError ? { last_error: this.#lastError } : {}),
    };
  }

  /** Handles one message from the command subscription. Returns when its response is in the outbox. */
  handle(topic: string, payload: Buffer): Promise<void> {
    const prefix = `${this.#opts.topics.base}/cmd/`;
    if (!topic.startsWith(prefix)) return Promise.resolve();
    const name = topic.slice(prefix.length);
    // Our own responses live one level deeper; the `cmd/+` filter never delivers them, but be sure.
    if (name.length === 0 || name.includes("/")) return Promise.resolve();
    this.#handled++;
    const counter = this.#opts.metrics.counter("cityedge_commands_total");
    const known = COMMAND_NAMES.includes(name as CommandName);
    // Names a sender makes up share one bucket (and one answer numbering): they leave no state behind.
    const limit = this.#opts.rateLimiter?.take(known ? name : "unknown") ?? "ok";
    if (limit === "drop") {
      this.#dropped++;
      counter.inc({ command: known ? name : "unknown", outcome: "rate_limited" });
      this.#flood.failure(
        { command: known ? name : "unknown" },
        "commands over their rate limit are dropped without an answer (one answer per 10 s)",
      );
      return Promise.resolve();
    }

    let requestId: string | null = null;
    const fail = (code: CommandErrorCode, message: string, details?: readonly string[]): Promise<void> => {
      this.#lastError = `${name}: ${message}`;
      this.#log.warn({ command: name, request_id: requestId, code, details }, `command ${name} refused: ${message}`);
      counter.inc({ command: known ? name : "unknown", outcome: code });
      this.#respond(name, {
        request_id: requestId,
        command: name,
        ok: false,
        error: { code, message, ...(details ? { details: [...details] } : {}) },
      });
      return Promise.resolve();
    };

    if (payload.length > MAX_PAYLOAD) return fail("malformed", `payload of ${payload.length} bytes is over the ${MAX_PAYLOAD}-byte limit`);
    let body: unknown;
    try {
      body = JSON.parse(payload.toString("utf8"));
    } catch (err) {
      return fail("malformed", `payload is not JSON: ${(err as Error).message}`);
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) return fail("malformed", 'payload must be a JSON object with an "id"');
    const fields = { ...(body as Record<string, unknown>) };
    const id = fields.id;
    if (typeof id === "string" && id.length > 0 && id.length <= MAX_REQUEST_ID) requestId = id;
    else
      return fail(
        "malformed",
        `"id" must be a string of 1..${MAX_REQUEST_ID} characters, got ${id === undefined ? "none" : JSON.stringify(id).slice(0, 80)}`,
      );
    for (const k of SENDER_ENVELOPE_KEYS) delete fields[k];
    if (limit === "refuse")
      return fail("rate_limited", `more than commands.rate_limits.${known ? name : "unknown"} requests a minute; try again later`);

    const command = this.#commands.get(name);
    if (!command) return fail("unknown_command", `unknown command "${name}" (known: ${[...this.#commands.keys()].join(", ")})`);
    if (!this.#opts.allow.includes(command.name)) {
      return fail("not_allowed", `command "${name}" is not allowed on this device (commands.allow: ${this.#opts.allow.join(", ") || "none"})`);
    }
    const bound = command.bind(fields);
    if (!bound.ok) return fail("malformed", `invalid parameters for ${name}`, bound.problems);
    if (this.#running.has(name)) return fail("busy", `${name} is already running; try again when it has answered`);
    // The statement is checked (and its nonce spent) before anything of the command runs.
    let statement: VerifiedStatement | undefined;
    if (this.#opts.statements) {
      try {
        statement = checkStatement(this.#opts.statements, command.name, fields);
      } catch (err) {
        const e = err instanceof CommandError ? err : new CommandError("rejected", (err as Error).message);
        return fail(e.code, e.message, e.details);
      }
    }

    const ctx = { requestId, log: this.#log.child({ command: name, request_id: requestId }), ...(statement ? { statement } : {}) };
    ctx.log.info("command received");
    const started = Date.now();
    // Through a promise from the start: a handler that throws before its first await is a refusal too.
    const work = Promise.resolve()
      .then(() => bound.run(ctx))
      .then(
        (result) => {
          counter.inc({ command: name, outcome: "ok" });
          ctx.log.info({ ms: Date.now() - started }, "command done");
          this.#respond(name, { request_id: requestId, command: name, ok: true, result });
          return true;
        },
        (err: unknown) => {
          const e = err instanceof CommandError ? err : new CommandError("failed", (err as Error).message ?? String(err));
          if (!(err instanceof CommandError)) ctx.log.error({ err }, "command failed");
          void fail(e.code, e.message, e.details);
          return false;
        },
      )
      .then((ok) => {
        if (ok) bound.after(ctx);
      })
      .catch((err: unknown) => ctx.log.error({ err }, "command follow-up failed"))
      .finally(() => this.#running.delete(name));
    this.#running.set(name, work);
    return work;
  }

  #respond(name: string, body: CommandResponseBody): void {
    try {
      this.#opts.bus.emit("cmd-response", this.#opts.scrub ? this.#opts.scrub(body) : body);
    } catch (err) {
      this.#log.error({ err, command: name }, "cannot queue the command response");
    }
  }
}
