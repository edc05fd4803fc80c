import { COMMAND_PARAMS, type CommandParams } from "../contract/index.js";
import type { ReloadOptions, ReloadResult } from "../supervise/reload.js";
import { CommandError, type CommandHandler } from "./types.js";

export interface ReloadConfigOptions {
  /** The file the daemon runs on. */
  configFile: string;
  /** The daemon's reload (the SIGHUP path). */
  reload: (opts?: ReloadOptions) => Promise<ReloadResult>;
}

/** Parts an answer travels through: a reload that restarts one of them is answered before it is applied. */
const ANSWER_PATH = new Set(["commands", "outbox", "broker"]);

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;

function rejected(file: string, problems: readonly string[]): CommandError {
  return new CommandError("rejected", `${file} has ${plural(problems.length, "problem")}; still running on the previous config`, problems);
}

/**
 * `reload_config`: checks the config file and works out which parts it would restart. A file
 * with problems is rejected with every one of them and nothing changes. Otherwise the reload is
 * applied and answered with what it restarted, or with the parts that failed to start when it
 * was rolled back; a reload that restarts the parts the answer goes through (the commands, the
 * outbox, the embedded broker) is answered first and applied right after.
 */
export function reloadConfigCommand(opts: ReloadConfigOptions): CommandHandler<CommandParams<"reload_config">> {
  // Requests answered before the reload was applied (the dispatcher runs one reload_config at a time).
  const applyAfter = new Set<string>();
  return {
    name: "reload_config",
    params: COMMAND_PARAMS.reload_config,
    async run(_params, ctx) {
      const plan = await opts.reload({ dryRun: true });
      if (plan.outcome === "rejected") throw rejected(opts.configFile, plan.problems);
      if (plan.outcome !== "planned") throw new Error(`reload_config: a dry run came back ${plan.outcome}`);
      const { restarted, started, stopped } = plan;
      if ([...restarted, ...stopped].some((name) => ANSWER_PATH.has(name))) {
        applyAfter.add(ctx.requestId);
        return { config: plan.config, applying: true, restarted, started, stopped };
      }
      const result = await opts.reload();
      switch (result.outcome) {
        case "rejected":
          throw rejected(opts.configFile, result.problems);
        case "rolled_back":
          throw new CommandError(
            "failed",
            `${opts.configFile}: ${result.failed.map((f) => f.part).join(", ")} failed to start; rolled back, still running on the previous config`,
            result.failed.map((f) => `${f.part}: ${f.error}`),
          );
        case "applied":
        case "planned": {
          const { outcome: _outcome, ...changes } = result;
          return { ...changes, applied: true };
        }
      }
    },
    after(_params, ctx) {
      // Only an answer-first request has work left; the others applied the reload in run().
      if (!applyAfter.delete(ctx.requestId)) return;
      opts.reload().then(
        (result) =>
          ctx.log.info(
            { outcome: result.outcome },
            result.outcome === "applied" ? "config reload applied" : `config reload ${result.outcome.replace("_", " ")}`,
          ),
        (err: unknown) => ctx.log.error({ err }, "config reload failed"),
      );
    },
  };
}
