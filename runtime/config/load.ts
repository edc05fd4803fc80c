import { readFileSync } from "node:fs";
import path from "node:path";
import { isMap, isPair, isScalar, isSeq, LineCounter, parse as parseYamlValue, parseDocument, visit, type Document, type Node } from "yaml";
import type { z } from "zod";
import { redactUrl, SecretScrubber, urlSecrets } from "../log/logger.js";
import { ConfigError, formatPath, type ConfigProblem } from "./errors.js";
import { CONFIG_OBJECT_SCHEMA, CONFIG_SCHEMA, type Config } from "./schema.js";
import { forecastStepProblems } from "../forecast/configCheck.js";
import { HTTP_REFERENCE_ONLY_KEYS } from "./sections/http.js";
import { closest } from "./suggest.js";
import { keyOwners, knownKeys, numberBounds } from "./walk.js";

/** Environment variables that override config values: `CITYEDGE__MQTT__URL` sets `mqtt.url`. */
export const ENV_PREFIX = "CITYEDGE__";

const REFERENCE = /\$\{(env|file):([^}]*)\}/g;
/** A value that is one reference and nothing else. */
const WHOLE_REFERENCE = /^\$\{(env|file):[^}]*\}$/;
/** Secrets that must not be written in the file itself: they come from a reference or an environment override. */
const REFERENCE_ONLY_KEYS: readonly string[] = [...HTTP_REFERENCE_ONLY_KEYS];
/** Keys whose values are secrets: never logged, and registered for scrubbing from log text. */
const SECRET_KEY = /^(password|passphrase|token|secret|api_key|access_key|secret_key)$/i;

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file it came from. */
  file: string;
  /** Directory relative paths in the config are resolved against. */
  baseDir: string;
  /** Secret values found in the config (after references were resolved), for log scrubbing. */
  secrets: string[];
  /** Key paths (`mqtt.tls.key`) whose whole value came from a `${env:}` or `${file:}` reference. */
  referenced?: readonly string[];
}

type Path = (string | number)[];

class Locator {
  readonly #doc: Document;
  readonly #lines: LineCounter;
  readonly #file: string;

  constructor(doc: Document, lines: LineCounter, file: string) {
    this.#doc = doc;
    this.#lines = lines;
    this.#file = file;
  }

  /** Position of the key at `path` (or of the deepest part of it that exists). */
  at(p: readonly PropertyKey[], message: string): ConfigProblem {
    let node: unknown = this.#doc.contents;
    let offset = 0;
    for (const seg of p) {
      if (isMap(node)) {
        const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === seg);
        if (!pair) break;
        offset = (pair.key as Node).range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === "number") {
        const item = node.items[seg] as Node | undefined;
        if (!item) break;
        offset = item.range?.[0] ?? offset;
        node = item;
      } else {
        break;
      }
    }
    return this.problemAt(offset, formatPath(p), message);
  }

  has(p: readonly PropertyKey[]): boolean {
    return this.#doc.hasIn(p as unknown[]);
  }

  problemAt(offset: number, keyPath: string, message: string): ConfigProblem {
    const { line, col } = this.#lines.linePos(offset);
    return { file: this.#file, line, col, path: keyPath, message };
  }
}

function describeTheValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `"${redactUrl(v)}"`;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  return typeof v;
}

/** What a secret's value is, without the value. */
function describeSecret(v: unknown): string {
  if (typeof v === "string") return `a secret of ${v.length} characters`;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return `a ${typeof v} (not shown: a secret)`;
  return describeTheValue(v);
}

function valueAt(root: unknown, p: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const seg of p) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

function issueMessage(issue: z.core.$ZodIssue, input: unknown): string {
  const actual = valueAt(input, issue.path);
  // A secret's value is never repeated in a message (problems are printed and logged), whatever its type.
  const secret = SECRET_KEY.test(String(issue.path.at(-1) ?? ""));
  const describeValue = (v: unknown): string => (secret ? describeSecret(v) : describeTheValue(v));
  switch (issue.code) {
    case "invalid_type":
      if (actual === undefined) return "is required";
      if (issue.expected === "boolean" && typeof actual === "string" && /^(yes|no|on|off|y|n)$/i.test(actual)) {
        return `expected boolean (true or false), got "${actual}"`;
      }
      return `expected ${issue.expected}, got ${describeValue(actual)}`;
    case "too_small":
    case "too_big": {
      if (typeof actual === "number") {
        const { min, max } = numberBounds(CONFIG_OBJECT_SCHEMA, issue.path);
        const range = min !== undefined && max !== undefined ? `${min}..${max}` : min !== undefined ? `>= ${min}` : `<= ${max}`;
        return `must be ${range}, got ${actual}`;
      }
      const bound = issue.code === "too_small" ? `at least ${String(issue.minimum)}` : `at most ${String(issue.maximum)}`;
      const unit = issue.origin === "string" ? " characters" : issue.origin === "array" ? " items" : "";
      return `must have ${bound}${unit}, got ${describeValue(actual)}`;
    }
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${describeValue(actual)}`;
    case "invalid_format":
      return `${issue.message}, got ${describeValue(actual)}`;
    case "invalid_union": {
      const u = issue as { note?: string; options?: unknown[] };
      if (u.note === "No matching discriminator" && Array.isArray(u.options)) {
        return `must be one of ${u.options.map((v) => JSON.stringify(v)).join(", ")}, got ${describeValue(actual)}`;
      }
      return issue.message;
    }
    case "not_multiple_of":
      return `must be a multiple of ${String(issue.divisor)}, got ${describeValue(actual)}`;
    // Their messages say it already (custom ones are ours); unknown keys are reported by the caller.
    case "custom":
    case "invalid_element":
    case "invalid_key":
    case "unrecognized_keys":
      return issue.message;
  }
}

function resolveReference(kind: string, arg: string, baseDir: string, env: NodeJS.ProcessEnv): string {
  if (kind === "env") {
    const v = env[arg];
    if (v === undefined) throw new Error(`environment variable ${arg} is not set`);
    return v;
  }
  const file = path.resolve(baseDir, arg);
  try {
    return readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * Replaces `${env:NAME}` and `${file:/path}` in every string scalar, in place; `whole` collects
 * the key paths whose value was exactly one reference.
 */
function resolveReferences(
  doc: Document,
  baseDir: string,
  env: NodeJS.ProcessEnv,
  loc: Locator,
  problems: ConfigProblem[],
  whole: Set<string>,
): void {
  visit(doc, {
    Scalar(_key, node, ancestry) {
      if (typeof node.value !== "string" || !node.value.includes("${")) return;
      const keyPath: Path = [];
      for (let i = 1; i < ancestry.length; i++) {
        const a = ancestry[i];
        const parent = ancestry[i - 1];
        if (isPair(a) && isScalar(a.key)) keyPath.push(String(a.key.value));
        else if (isSeq(parent)) keyPath.push(parent.items.indexOf(a));
      }
      if (WHOLE_REFERENCE.test(node.value.trim())) whole.add(formatPath(keyPath));
      try {
        node.value = node.value.replace(REFERENCE, (_m, kind: string, arg: string) => resolveReference(kind, arg.trim(), baseDir, env));
      } catch (err) {
        problems.push(loc.problemAt(node.range?.[0] ?? 0, formatPath(keyPath), (err as Error).message));
      }
    },
  });
}

/** Applies `CITYEDGE__A__B=value` overrides; values are parsed as YAML scalars (so `5` is a number). */
function applyEnvOverrides(obj: Record<string, unknown>, env: NodeJS.ProcessEnv, origins: Map<string, string>): void {
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const segs: Path = name
      .slice(ENV_PREFIX.length)
      .split("__")
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s.toLowerCase()));
    let target: Record<string | number, unknown> = obj;
    for (let i = 0; i < segs.length - 1; i++) {
      const seg = segs[i]!;
      const next = target[seg];
      if (next === null || typeof next !== "object") target[seg] = typeof segs[i + 1] === "number" ? [] : {};
      target = target[seg] as Record<string | number, unknown>;
    }
    let value: unknown = raw;
    // A secret is text as the environment holds it: a numeric password stays a string.
    if (!SECRET_KEY.test(String(segs[segs.length - 1]))) {
      try {
        value = parseYamlValue(raw);
      } catch {
        // Not valid YAML on its own (e.g. "a: b: c"): take the text as it is.
        value = raw;
      }
    }
    target[segs[segs.length - 1]!] = value;
    origins.set(formatPath(segs), name);
  }
}

/**
 * Every secret value in `value`: those of secret keys (numbers as their text), the passwords of
 * URLs, and private keys' PEM text.
 */
function collectSecrets(value: unknown, key: string | undefined, out: string[]): void {
  const secretKey = key !== undefined && SECRET_KEY.test(key);
  if (typeof value === "string") {
    if (secretKey && value.length > 0) out.push(value);
    else if (key === "key" && value.includes("-----BEGIN")) out.push(value.trim());
    out.push(...urlSecrets(value));
  } else if (typeof value === "number" || typeof value === "bigint") {
    if (secretKey) out.push(String(value));
  } else if (Array.isArray(value)) {
    for (const v of value) collectSecrets(v, undefined, out);
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) collectSecrets(v, k, out);
  }
}

/**
 * Reads, resolves and validates a config file. Throws a ConfigError that lists every problem,
 * each located at the offending key, when the file cannot be used.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path.resolve(file), "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "file not found" : code === "EACCES" ? "permission denied" : String(err);
    throw new ConfigError([{ file, line: 1, col: 1, path: "", message: `cannot read config: ${why}` }]);
  }
  return parseConfig(text, file, env);
}

/**
 * Resolves and validates config text as if it were the content of `file` (relative paths and
 * `${file:}` references are from its folder; problems name it): what {@link loadConfig} does
 * after reading, for a file about to be written.
 */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const abs = path.resolve(file);
  const baseDir = path.dirname(abs);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const loc = new Locator(doc, lines, file);
  const problems: ConfigProblem[] = [];
  for (const e of doc.errors) {
    problems.push(loc.problemAt(e.pos[0], "", `YAML syntax error: ${e.message.split("\n")[0]}`));
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const referenced = new Set<string>();
  resolveReferences(doc, baseDir, env, loc, problems, referenced);
  const raw: unknown = doc.toJS() ?? {};
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    problems.push(loc.problemAt(0, "", `the config must be a mapping of keys to values, got ${describeTheValue(raw)}`));
    throw new ConfigError(problems);
  }
  const origins = new Map<string, string>();
  applyEnvOverrides(raw as Record<string, unknown>, env, origins);

  // Problems never repeat a secret, wherever it sits in them: every message is scrubbed by value.
  const rawSecrets: string[] = [];
  collectSecrets(raw, undefined, rawSecrets);
  const scrubber = new SecretScrubber();
  scrubber.setSecrets(rawSecrets);
  const scrubbed = (list: ConfigProblem[]): ConfigProblem[] => list.map((p) => ({ ...p, message: scrubber.scrub(p.message) }));

  const result = CONFIG_SCHEMA.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === "unrecognized_keys") {
        const known = knownKeys(CONFIG_OBJECT_SCHEMA, issue.path, raw);
        for (const key of issue.keys) {
          // A key of another form of a union (a file camera's `loop` on an RTSP camera) says whose it is.
          const owners = keyOwners(CONFIG_OBJECT_SCHEMA, issue.path, key, raw);
          if (owners && owners.owners.length > 0) {
            const whose = owners.owners.map((o) => JSON.stringify(o)).join(" or ");
            const own = owners.value !== undefined ? ` for ${owners.discriminator} ${JSON.stringify(owners.value)}` : "";
            problems.push(loc.at([...issue.path, key], `unknown key "${key}"${own} (it is an option of ${owners.discriminator} ${whose})`));
            continue;
          }
          const guess = closest(key, known);
          const hint = guess ? ` (did you mean "${guess}"?)` : known.length ? ` (known keys: ${known.join(", ")})` : "";
          problems.push(loc.at([...issue.path, key], `unknown key "${key}"${hint}`));
        }
        continue;
      }
      const keyPath = formatPath(issue.path);
      const origin = origins.get(keyPath);
      const suffix = origin ? ` (set by environment variable ${origin})` : "";
      problems.push(loc.at(issue.path, issueMessage(issue, raw) + suffix));
    }
  }
  for (const key of REFERENCE_ONLY_KEYS) {
    const segs = key.split(".");
    if (typeof valueAt(raw, segs) !== "string" || referenced.has(key) || origins.has(key)) continue;
    problems.push(loc.at(segs, "must come from ${env:NAME} or ${file:PATH}, not be written in the config file"));
  }
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line || a.col - b.col);
    throw new ConfigError(scrubbed(problems));
  }
  const config = result.data!;
  // steps a forecast's model cannot serve: only its manifest tells
  const stepProblems = forecastStepProblems(config, baseDir).map((p) => loc.at(p.path, p.message));
  if (stepProblems.length > 0) throw new ConfigError(scrubbed(stepProblems));
  const secrets: string[] = [];
  collectSecrets(config, undefined, secrets);
  return { config, file: abs, baseDir, secrets: [...new Set(secrets)], referenced: [...referenced] };
}

/** Resolves a path from the config against the config file's directory. */
export function resolvePath(loaded: Pick<LoadedConfig, "baseDir">, p: string): string {
  return path.resolve(loaded.baseDir, p);
}

/**
 * Places problems found after loading (a model's manifest, say) at the config key they belong
 * to: `FILE:LINE:COL path: message`, as loadConfig's own. Reads `file` again; a file that no
 * longer reads places everything at its first line.
 */
export function configLocator(file: string): (path: readonly PropertyKey[], message: string) => ConfigProblem {
  let text = "";
  try {
    text = readFileSync(path.resolve(file), "utf8");
  } catch {
    return (p, message) => ({ file, line: 1, col: 1, path: formatPath(p), message });
  }
  return configTextLocator(text, file);
}

/** As {@link configLocator}, for config text not yet written to `file` (an edit being checked). */
export function configTextLocator(text: string, file: string): (path: readonly PropertyKey[], message: string) => ConfigProblem {
  const lines = new LineCounter();
  const loc = new Locator(parseDocument(text, { lineCounter: lines, prettyErrors: false }), lines, file);
  return (p, message) => loc.at(p, message);
}
