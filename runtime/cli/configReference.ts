import { readFileSync, writeFileSync } from "node:fs";
import { EXIT_FATAL, flag, type CliCommand } from "./command.js";

export const configReferenceCommand: CliCommand = {
  name: "config-reference",
  synopsis: "config-reference [--write FILE]",
  summary: "print the config reference (Markdown), or update it in FILE",
  help: `Usage: cityedge config-reference [--write FILE]

Prints the configuration reference table generated from the schema. With --write, replaces the
table between the config-reference markers in FILE (docs/configuration.md in this repository).`,
  async run(args) {
    const { configReference, REFERENCE_BEGIN, REFERENCE_END } = await import("../config/reference.js");
    const write = flag(args, "--write");
    const table = configReference();
    if (write === undefined) {
      process.stdout.write(`${table}\n`);
      return 0;
    }
    const text = readFileSync(write, "utf8");
    const a = text.indexOf(REFERENCE_BEGIN);
    const b = text.indexOf(REFERENCE_END);
    if (a < 0 || b < a) {
      process.stderr.write(`cityedge config-reference: ${write} has no reference markers (${REFERENCE_BEGIN} … ${REFERENCE_END})\n`);
      return EXIT_FATAL;
    }
    writeFileSync(write, text.slice(0, a) + table + text.slice(b + REFERENCE_END.length));
    process.stdout.write(`updated the config reference in ${write}\n`);
    return 0;
  },
};
