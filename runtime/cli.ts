#!/usr/bin/env node
import { ConfigError, formatProblem } from "./config/errors.js";
import { loadConfig } from "./config/load.js";
import { Daemon } from "./daemon.js";
import { createRootLogger, SecretScrubber, type Logger } from "./log/logger.js";
import { SystemdNotifier } from "./systemd/watchdog.js";
import { packageVersion } from "./version.js";

/** sysexits.h EX_CONFIG: the contract's exit code for a configuration that cannot be used. */
export const EXIT_CONFIG = 78;
export const EXIT_FATAL = 1;
const STOP_DEADLINE_MS = 9500;

const USAGE = `cityedge ${packageVersion()}: edge runtime for city cameras and meters

Usage:
  cityedge run --config FILE       run the daemon (SIGTERM/SIGINT stop it, SIGHUP reloads FILE)
  cityedge check-config FILE       validate FILE; exit 0 when valid, 78 with every problem when not
  cityedge version                 print the version
  cityedge bench [--json] [NAME]   run the benchmarks (all, or the one named)
  cityedge config-reference [--write FILE]
                                   print the config reference (Markdown), or update it in FILE

Exit codes: 0 clean stop, 78 bad configuration, any other non-zero a fatal error.
Environment: CITYEDGE__SECTION__KEY=value overrides any config value (see README).`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

function printProblems(err: ConfigError): void {
  for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
  process.stderr.write(`cityedge: refusing to start: ${err.problems.length} problem${err.problems.length === 1 ? "" : "s"} in the configuration\n`);
}

function checkConfig(file: string | undefined): number {
  if (!file) {
    process.stderr.write(`cityedge check-config: missing FILE\n\n${USAGE}\n`);
    return 64;
  }
  try {
    const { config } = loadConfig(file);
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
}

async function run(file: string | undefined): Promise<number> {
  if (!file) {
    process.stderr.write(`cityedge run: missing --config FILE\n\n${USAGE}\n`);
    return 64;
  }
  let loaded;
  try {
    loaded = loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      printProblems(err);
      return EXIT_CONFIG;
    }
    throw err;
  }
  const scrubber = new SecretScrubber();
  scrubber.setSecrets(loaded.secrets);
  const log = createRootLogger({ level: loaded.config.log_level, scrubber });
  installCrashHandlers(log);
  const daemon = new Daemon({ configFile: file, loaded, log, scrubber });
  // sd_notify (issue 8): READY after start, RELOADING around SIGHUP, STOPPING at shutdown, watchdog.
  // The feed runs on the main loop: a wedged loop stops it. (Not tied to the daemon's heartbeat,
  // which pauses during a reload that may spend minutes building TensorRT engines.)
  const systemd = new SystemdNotifier({ log });
  systemd.start();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        log.warn({ signal }, "already stopping");
        return;
      }
      stopping = true;
      log.info({ signal }, "stopping");
      systemd.stopping();
      const deadline = setTimeout(() => {
        log.error({ deadline_ms: STOP_DEADLINE_MS }, "clean stop took too long; exiting anyway");
        resolve(EXIT_FATAL);
      }, STOP_DEADLINE_MS);
      deadline.unref();
      daemon
        .stop()
        .then(() => resolve(0))
        .catch((err: unknown) => {
          log.error({ err }, "stop failed");
          resolve(EXIT_FATAL);
        })
        .finally(() => {
          clearTimeout(deadline);
          systemd.stop();
        });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", () => {
      log.info("SIGHUP: reloading the config");
      systemd.reloading();
      daemon.reload().then(() => systemd.ready(), (err: unknown) => {
        log.fatal({ err }, "config reload failed");
        process.exit(EXIT_FATAL);
      });
    });
    daemon.start().then(() => systemd.ready(), (err: unknown) => {
      log.fatal({ err }, "daemon failed to start");
      resolve(EXIT_FATAL);
    });
  });
}

function installCrashHandlers(log: Logger): void {
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "uncaught exception; exiting");
    process.exit(EXIT_FATAL);
  });
  process.on("unhandledRejection", (reason) => {
    log.fatal({ err: reason }, "unhandled promise rejection; exiting");
    process.exit(EXIT_FATAL);
  });
}

async function bench(args: string[]): Promise<number> {
  const { runBench } = await import("./bench/index.js");
  return runBench(args);
}

async function configReferenceCommand(write: string | undefined): Promise<number> {
  const { configReference, REFERENCE_BEGIN, REFERENCE_END } = await import("./config/reference.js");
  const table = configReference();
  if (write === undefined) {
    process.stdout.write(`${table}\n`);
    return 0;
  }
  const { readFileSync, writeFileSync } = await import("node:fs");
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
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case "run":
      return run(flag(args, "--config") ?? flag(args, "-c"));
    case "check-config":
      return checkConfig(args[0]);
    case "version":
    case "--version":
    case "-v":
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    case "bench":
      return bench(args);
    case "config-reference":
      return configReferenceCommand(flag(args, "--write"));
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(`cityedge: unknown command ${cmd === undefined ? "(none)" : `"${cmd}"`}\n\n${USAGE}\n`);
      return 64;
  }
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
    process.exit(EXIT_FATAL);
  },
);
