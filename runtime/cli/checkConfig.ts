import { ConfigError, formatProblem } from "../config/errors.js";
import { loadConfig } from "../config/load.js";
import { EXIT_CONFIG, usageError, type CliCommand } from "./command.js";

export function printProblems(err: ConfigError): void {
  for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
  process.stderr.write(`cityedge: refusing to start: ${err.problems.length} problem${err.problems.length === 1 ? "" : "s"} in the configuration\n`);
}

export const checkConfigCommand: CliCommand = {
  name: "check-config",
  synopsis: "check-config FILE",
  summary: "validate FILE: exit 0 when valid, 78 with every problem when not",
  help: `Usage: cityedge check-config FILE

Validates the config file as the daemon would before starting: YAML syntax, unknown keys, types,
ranges, references between sections and conflicts. Every problem is printed on stderr as
FILE:LINE:COL path.to.key: message.

Exit codes: 0 valid, 78 invalid, 64 no FILE given.`,
  run(args) {
    const file = args.find((a) => !a.startsWith("-"));
    if (file === undefined) return Promise.resolve(usageError(checkConfigCommand, "missing FILE"));
    try {
      const { config } = loadConfig(file);
      process.stdout.write(
        `${file}: valid (device ${config.device_id}; ${config.cameras.length} cameras, ${config.models.length} models, ${config.meters.length} meters, ${config.forecasts.length} forecasts)\n`,
      );
      return Promise.resolve(0);
    } catch (err) {
      if (err instanceof ConfigError) {
        printProblems(err);
        return Promise.resolve(EXIT_CONFIG);
      }
      throw err;
    }
  },
};
