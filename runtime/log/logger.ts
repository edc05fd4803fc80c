import pino, { type Logger, type LoggerOptions } from "pino";
import pretty from "pino-pretty";

export type { Logger } from "pino";

/** Keys whose values never reach a log, wherever they sit in a logged object. */
const REDACT_KEYS = ["password", "passphrase", "token", "secret", "api_key", "access_key", "secret_key", "private_key", "authorization", "key"];
const REDACT_PATHS = REDACT_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);
export const REDACTED = "[redacted]";

/** `scheme://user:pass@host` → `scheme://user:[redacted]@host`; `scheme://token@host` → `scheme://[redacted]@host`. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^\s/@:]*)(:[^\s/@]*)?@/gi, (_m, scheme: string, user: string, pass: string | undefined) =>
    pass !== undefined ? `${scheme}${user}:${REDACTED}@` : `${scheme}${REDACTED}@`,
  );
}

/**
 * Scrubs credentials from log text: passwords in URLs, and every secret value the config
 * holds, wherever a component might have interpolated one.
 */
export class SecretScrubber {
  #secrets: string[] = [];

  setSecrets(values: readonly string[]): void {
    // Longest first, so a secret that contains another is replaced whole.
    this.#secrets = [...new Set(values.filter((v) => v.length >= 3))].sort((a, b) => b.length - a.length);
  }

  scrub(text: string): string {
    let out = redactUrl(text);
    for (const s of this.#secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
    return out;
  }

  scrubDeep(value: unknown, depth = 0): unknown {
    if (typeof value === "string") return this.scrub(value);
    if (depth > 6 || value === null || typeof value !== "object") return value;
    if (value instanceof Error) return value;
    if (Array.isArray(value)) return value.map((v) => this.scrubDeep(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = this.scrubDeep(v, depth + 1);
    return out;
  }
}

export interface RootLoggerOptions {
  level: string;
  /** Human-readable lines instead of JSON; default: when stdout is a terminal. */
  pretty?: boolean;
  scrubber?: SecretScrubber;
  destination?: pino.DestinationStream;
}

/** The daemon's one root logger; every part gets `root.child({ module })`. */
export function createRootLogger(opts: RootLoggerOptions): Logger {
  const scrubber = opts.scrubber ?? new SecretScrubber();
  const options: LoggerOptions = {
    level: opts.level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    formatters: {
      level: (label) => ({ level: label }),
      log: (obj) => scrubber.scrubDeep(obj) as Record<string, unknown>,
    },
    serializers: {
      err: (err: unknown) => {
        const s = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
        if (typeof s.message === "string") s.message = scrubber.scrub(s.message);
        if (typeof s.stack === "string") s.stack = scrubber.scrub(s.stack);
        return s;
      },
    },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === "string" ? scrubber.scrub(a) : a)) as Parameters<typeof method>;
        method.apply(this, scrubbed);
      },
    },
  };
  const usePretty = opts.pretty ?? process.stdout.isTTY === true;
  const dest =
    opts.destination ??
    (usePretty ? pretty({ colorize: true, sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" }) : pino.destination({ sync: true }));
  return pino(options, dest);
}
