import type { CliCommand } from "./command.js";
import { usageError, wantsHelp } from "./command.js";
import { modelsAddCommand } from "./modelsAdd.js";
import { modelsFetchCommand } from "./modelsFetch.js";
import { modelsQuantizeCommand } from "./modelsQuantize.js";

/** `cityedge models SUBCOMMAND`: each sub-command is a CliCommand of its own file, listed here. */
export const MODELS_SUBCOMMANDS: readonly CliCommand[] = [modelsAddCommand, modelsFetchCommand, modelsQuantizeCommand];

function help(): string {
  const width = Math.max(...MODELS_SUBCOMMANDS.map((c) => c.synopsis.length)) + 3;
  return `Usage: cityedge models SUBCOMMAND [options]

${MODELS_SUBCOMMANDS.map((c) => `  cityedge ${c.synopsis.padEnd(width)}${c.summary}`).join("\n")}

cityedge models SUBCOMMAND --help prints the options of one.`;
}

export const modelsCommand: CliCommand = {
  name: "models",
  synopsis: "models add|fetch|quantize …",
  summary: "add an ONNX detector (writes its manifest), fetch a known one, or quantize one to INT8",
  get help() {
    return help();
  },
  subcommands: MODELS_SUBCOMMANDS,
  async run(args) {
    const [name, ...rest] = args;
    const sub = MODELS_SUBCOMMANDS.find((c) => c.name === `models ${name}`);
    if (!sub) return usageError(modelsCommand, name === undefined ? "missing SUBCOMMAND" : `unknown subcommand "${name}"`);
    if (wantsHelp(rest)) {
      process.stdout.write(`${sub.help}\n`);
      return 0;
    }
    return sub.run(rest);
  },
};
