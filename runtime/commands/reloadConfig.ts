import { COMMAND_PARAMS } from "../contract/index.js";
import { ConfigError, formatProblem } from "../config/errors.js";
import { loadConfig } from "../config/load.js";
import { CommandError, type CommandHandler } from "./types.js";

export interface ReloadConfigOptions {
  /** The file the daemon runs on. */
  configFile: string;
  env?: NodeJS.ProcessEnv;
  /** The daemon's reload (the SIGHUP path). */
  reload: () => Promise<boolean>;
}

/**
 * `reload_config`: validates the config file first and rejects it with every problem, so a bad
 * file changes nothing; a valid one is answered, then applied through the SIGHUP path (after the
 * answer, because applying restarts the parts that answer).
 */
export function reloadConfigCommand(opts: ReloadConfigOptions): CommandHandler<Record<string, never>> {
  return {
    name: "reload_config",
    params: COMMAND_PARAMS.reload_config,
    async run() {
      try {
        const next = loadConfig(opts.configFile, opts.env ?? process.env);
        return { config: next.file, applying: true };
      } catch (err) {
        if (err instanceof ConfigError) {
          throw new CommandError(
            "rejected",
            `${opts.configFile} has ${err.problems.length} problem${err.problems.length === 1 ? "" : "s"}; still running on the previous config`,
            err.problems.map(formatProblem),
          );
        }
        throw err;
      }
    },
    after(_params, ctx) {
      opts.reload().then(
        (applied) =>
          ctx.log.info({ applied }, applied ? "config reload applied" : "config reload not applied (the file changed since it was checked)"),
        (err: unknown) => ctx.log.error({ err }, "config reload failed"),
      );
    },
  };
}
