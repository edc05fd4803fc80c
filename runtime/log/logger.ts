import pino, { type Logger, type LoggerOptions } from "pino";
import pretty from "pino-pretty";

export type { Logger } from "pino";

/** Keys whose values never reach a log, wherever they sit in a logged object. */
const REDACT_KEYS = ["password", "passphrase", "token", "secret", "api_key", "access_key", "secret_key", "private_key", "authorization", "key"];
const REDACT_PATHS = REDACT_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);
export const REDACTED = "[redacted]";

/** A URL's credentials: the user-info before the LAST `@` of the URL, split at its first `:`. */
export interface UserInfo {
  /** `rtsp://` */
  scheme: string;
  /** As written (perhaps percent-encoded). */
  user: string;
  /** As written; undefined when the user-info has no `:`. */
  password: string | undefined;
  /** Host, port, path … after the `@`. */
  rest: string;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Splits a URL's user-info off at the last `@` (a password may hold `@`, `/` and `:` unescaped:
 * `rtsp://admin:p@ss/w:rd@10.0.0.5/stream` is user `admin`, password `p@ss/w:rd`, host
 * `10.0.0.5`; an `@` in a path must be written `%40`). Undefined when the URL has none.
 */
export function splitUserInfo(url: string): UserInfo | undefined {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(url);
  if (!m) return undefined;
  const after = m[2]!;
  const at = after.lastIndexOf("@");
  if (at < 0) return undefined;
  const info = after.slice(0, at);
  const colon = info.indexOf(":");
  return {
    scheme: m[1]!,
    user: colon < 0 ? info : info.slice(0, colon),
    password: colon < 0 ? undefined : info.slice(colon + 1),
    rest: after.slice(at + 1),
  };
}

/**
 * The URL with its user-info percent-encoded, so that every URL parser (WHATWG's, ffmpeg's) finds
 * the same host as {@link splitUserInfo}; a URL without user-info comes back as it is.
 */
export function normalizeUserInfo(url: string): string {
  const u = splitUserInfo(url);
  if (!u) return url;
  const enc = (s: string): string => encodeURIComponent(decode(s));
  return `${u.scheme}${enc(u.user)}${u.password !== undefined ? `:${enc(u.password)}` : ""}@${u.rest}`;
}

/** A user name that is shown: one that cannot be the start of a password with `@` or `/` in it. */
const PLAIN_USER = /^[\w.%+~-]*$/;

/**
 * The secrets a URL carries (its password, or a lone token, or the whole user-info where the
 * user is not a plain name), as written, decoded and percent-encoded; none without user-info.
 */
export function urlSecrets(url: string): string[] {
  const u = splitUserInfo(url);
  if (!u) return [];
  const secret = u.password === undefined ? u.user : PLAIN_USER.test(u.user) ? u.password : `${u.user}:${u.password}`;
  return secret.length > 0 ? [...new Set([secret, decode(secret), encodeURIComponent(decode(secret))])] : [];
}

/** The URL without its credentials: `scheme://user:[redacted]@host`, or `scheme://[redacted]@host` for a lone token. */
function redactOne(url: string): string {
  const u = splitUserInfo(url);
  if (!u) return url;
  return u.password !== undefined && PLAIN_USER.test(u.user) ? `${u.scheme}${u.user}:${REDACTED}@${u.rest}` : `${u.scheme}${REDACTED}@${u.rest}`;
}

/**
 * Redacts the credentials of every URL in `text`: `scheme://user:pass@host` becomes
 * `scheme://user:[redacted]@host`, `scheme://token@host` becomes `scheme://[redacted]@host`. A URL
 * runs to the next space or quote, and its user-info to its last `@`.
 */
export function redactUrl(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]*/gi, redactOne);
}

/**
 * Scrubs credentials from log text: passwords in URLs, and every secret value the config
 * holds, wherever a component might have interpolated one.
 */
export class SecretScrubber {
  #secrets: string[] = [];

  /** Numbers count as their decimal text: a numeric password is as secret as any. */
  setSecrets(values: readonly (string | number)[]): void {
    // Longest first, so a secret that contains another is replaced whole.
    this.#secrets = [...new Set(values.map(String).filter((v) => v.length >= 3))].sort((a, b) => b.length - a.length);
  }

  scrub(text: string): string {
    let out = redactUrl(text);
    for (const s of this.#secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
    return out;
  }

  /** Strings scrubbed in arrays and plain objects down to `maxDepth` levels; anything else is left as it is. */
  scrubDeep(value: unknown, maxDepth = 6): unknown {
    if (typeof value === "string") return this.scrub(value);
    if (maxDepth < 0 || value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) return value.map((v) => this.scrubDeep(v, maxDepth - 1));
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = this.scrubDeep(v, maxDepth - 1);
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
