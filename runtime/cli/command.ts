/** sysexits.h EX_USAGE: the command line itself was wrong. */
export const EXIT_USAGE = 64;
/** sysexits.h EX_CONFIG: the contract's exit code for a configuration that cannot be used. */
export const EXIT_CONFIG = 78;
export const EXIT_FATAL = 1;

/**
 * One `cityedge` sub-command. A new command is one file exporting one of these, plus one line in
 * `runtime/cli/commands.ts`. `run` receives the arguments after the command name and resolves to
 * the exit code; `--help` / `-h` never reaches it (the dispatcher prints `help` instead).
 */
export interface CliCommand {
  readonly name: string;
  /** One line for the command list: `NAME ARGS` on the left, what it does on the right. */
  readonly synopsis: string;
  readonly summary: string;
  /** The whole text `cityedge NAME --help` prints (usage, options, exit codes). */
  readonly help: string;
  /** A group of commands (`cityedge models add …`): `--help` after a sub-command's name reaches run(), which prints that one's. */
  readonly subcommands?: readonly CliCommand[];
  run(args: string[]): Promise<number>;
}

/** The value of `--name VALUE` or `--name=VALUE`, or undefined. */
export function flag(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

/** Every value of a repeatable `--name VALUE` / `--name=VALUE` flag, in order. */
export function flags(args: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === name && i + 1 < args.length) out.push(args[++i]!);
    else if (a.startsWith(`${name}=`)) out.push(a.slice(name.length + 1));
  }
  return out;
}

export function wantsHelp(args: readonly string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

/** Writes a usage error for `command` and returns EXIT_USAGE. */
export function usageError(command: CliCommand, message: string): number {
  process.stderr.write(`cityedge ${command.name}: ${message}\n\n${command.help}\n`);
  return EXIT_USAGE;
}
