import { ConfigError, formatProblem } from "../config/errors.js";
import { configLocator, loadConfig } from "../config/load.js";
import { checkConfigModels } from "../detect/configCheck.js";
import { EXIT_CONFIG, usageError, type CliCommand } from "./command.js";

export function printProblems(err: ConfigError): void {
  for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
  process.stderr.write(`cityedge: refusing to start: ${err.problems.length} problem${err.problems.length === 1 ? "" : "s"} in the configuration\n`);
}

export const checkConfigCommand: CliCommand = {
  name: "check-config",
  synopsis: "check-config FILE",
  summary: "validate FILE: exit 0 when valid, 78 with every problem when not",
  help: `Usage: cityedge check-config FILE [--skip-models]

Validates the config file as the daemon would before starting: YAML syntax, unknown keys, types,
ranges, references between sections and conflicts. Then it opens every model's manifest: the
manifest's keys, every file's SHA-256 (external data too), the model's input against the
manifest's size, its outputs against the decoder, the labels and the strides, and every label a
camera names against its model's labels. Every problem is printed on stderr as
FILE:LINE:COL path.to.key: message; warnings (a demo model on a real camera) too, without
making the config invalid.

  --skip-models   check the config only, without opening the model files (a device's config
                  checked on another machine, where its model paths do not exist)

Exit codes: 0 valid, 78 invalid, 64 no FILE given.`,
  async run(args) {
    const file = args.find((a) => !a.startsWith("-"));
    if (file === undefined) return usageError(checkConfigCommand, "missing FILE");
    try {
      const loaded = loadConfig(file);
      const { config } = loaded;
      const { problems, warnings } = args.includes("--skip-models")
        ? { problems: [], warnings: [] }
        : await checkConfigModels(loaded, configLocator(file));
      for (const w of warnings) process.stderr.write(`${formatProblem(w)} (warning)\n`);
      if (problems.length > 0) throw new ConfigError(problems);
      process.stdout.write(
        `${file}: valid (device ${config.device_id}; ${config.cameras.length} cameras, ${config.models.length} models, ${config.meters.length} meters, ${config.forecasts.length} forecasts)\n`,
      );
      return 0;
    } catch (err) {
      if (err instanceof ConfigError) {
        printProblems(err);
        return EXIT_CONFIG;
      }
      throw err;
    }
  },
};
