import { ConfigError } from "../config/errors.js";
import { loadConfig } from "../config/load.js";
import { Daemon } from "../daemon.js";
import { createRootLogger, SecretScrubber, type Logger } from "../log/logger.js";
import { SystemdNotifier } from "../systemd/watchdog.js";
import { printProblems } from "./checkConfig.js";
import { EXIT_CONFIG, EXIT_FATAL, flag, usageError, type CliCommand } from "./command.js";

const STOP_DEADLINE_MS = 9500;

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

async function runDaemon(file: string): Promise<number> {
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
  // A reload that cannot bring the previous config back ends the process (non-zero), so that
  // systemd starts it afresh rather than leaving it alive with parts missing.
  let fatal: ((err: Error) => void) | undefined;
  const daemon = new Daemon({ configFile: file, loaded, log, scrubber, onFatal: (err) => fatal?.(err) });
  // sd_notify: READY after start, RELOADING around SIGHUP, STOPPING at shutdown, and the watchdog.
  // The feed runs on the main loop, so a wedged loop stops it. It is not tied to the daemon's
  // heartbeat, which pauses during a reload that may spend minutes building TensorRT engines.
  const systemd = new SystemdNotifier({ log });
  systemd.start();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string, code = 0): void => {
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
        .then(() => resolve(code))
        .catch((err: unknown) => {
          log.error({ err }, "stop failed");
          resolve(EXIT_FATAL);
        })
        .finally(() => {
          clearTimeout(deadline);
          systemd.stop();
        });
    };
    fatal = (err) => {
      log.fatal({ err }, "the daemon cannot go on; exiting for systemd to restart it");
      stop("fatal", EXIT_FATAL);
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", () => {
      log.info("SIGHUP: reloading the config");
      systemd.reloading();
      daemon.reload().then(
        (result) => {
          log.info({ outcome: result.outcome }, `SIGHUP reload ${result.outcome.replace("_", " ")}`);
          systemd.ready();
        },
        (err: unknown) => {
          log.fatal({ err }, "config reload failed");
          process.exit(EXIT_FATAL);
        },
      );
    });
    daemon.start().then(
      () => systemd.ready(),
      (err: unknown) => {
        log.fatal({ err }, "daemon failed to start");
        resolve(EXIT_FATAL);
      },
    );
  });
}

export const runCommand: CliCommand = {
  name: "run",
  synopsis: "run --config FILE",
  summary: "run the daemon (SIGTERM/SIGINT stop it cleanly, SIGHUP reloads FILE)",
  help: `Usage: cityedge run --config FILE     (or -c FILE)

Runs the daemon on FILE until SIGTERM or SIGINT (clean stop, exit 0). SIGHUP re-reads FILE: a valid
file is applied by difference (only the parts whose settings changed restart), an invalid one is
rejected with every problem logged and the running config stays; a file whose parts fail to start
is rolled back to the running config.
Logs are JSON lines on stdout (pretty on a terminal). Under systemd (Type=notify) it reports READY,
RELOADING and STOPPING and feeds the watchdog.

Exit codes: 0 clean stop, 78 invalid configuration, 64 no --config, 1 fatal error.`,
  run(args) {
    const file = flag(args, "--config") ?? flag(args, "-c");
    if (file === undefined) return Promise.resolve(usageError(runCommand, "missing --config FILE"));
    return runDaemon(file);
  },
};
