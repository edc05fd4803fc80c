#!/usr/bin/env node
import { EXIT_USAGE, wantsHelp } from "./cli/command.js";
import { COMMANDS } from "./cli/commands.js";
import { packageVersion } from "./version.js";

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.synopsis.length)) + 3;
  const lines = COMMANDS.map((c) => `  cityedge ${c.synopsis.padEnd(width)}${c.summary}`);
  return `cityedge ${packageVersion()}: edge runtime for city cameras and meters

Usage:
${lines.join("\n")}

cityedge COMMAND --help prints the options of one command.
Exit codes: 0 success or clean stop, 78 bad configuration, 64 bad command line, any other non-zero a fatal error.
Environment: CITYEDGE__SECTION__KEY=value overrides any config value (see docs/configuration.md).`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    const topic = name === "help" ? COMMANDS.find((c) => c.name === args[0]) : undefined;
    process.stdout.write(`${topic ? topic.help : usage()}\n`);
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === "--version" || name === "-v") return COMMANDS.find((c) => c.name === "version")!.run([]);
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`cityedge: unknown command "${name}"\n\n${usage()}\n`);
    return EXIT_USAGE;
  }
  if (wantsHelp(args) && !(command.subcommands && args[0] !== undefined && !args[0].startsWith("-"))) {
    process.stdout.write(`${command.help}\n`);
    return 0;
  }
  return command.run(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Parts clear their own timers and sockets; exit explicitly anyway so a leaked handle in a
    // library can never keep a stopped daemon alive under systemd.
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`cityedge: fatal: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
