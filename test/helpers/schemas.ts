import { Ajv, type ValidateFunction } from "ajv";
import formats from "ajv-formats";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "./sharedData.js";

export const SCHEMA_DIR = path.join(REPO_ROOT, "runtime/contract/schemas");

/**
 * Topic patterns (after `<topic_prefix>/<device_id>`) and the schema files that describe them, in
 * the order tried. `envelope` false: the message is not made by the daemon (commands).
 */
const ROUTES: { pattern: RegExp; names: string[]; envelope: boolean }[] = [
  { pattern: /\/status$/, names: ["status"], envelope: true },
  { pattern: /\/health$/, names: ["health"], envelope: true },
  { pattern: /\/cameras\/[^/]+\/detections$/, names: ["detections"], envelope: true },
  { pattern: /\/cameras\/[^/]+\/counts$/, names: ["counts"], envelope: true },
  { pattern: /\/cameras\/[^/]+\/congestion$/, names: ["congestion"], envelope: true },
  { pattern: /\/meters\/[^/]+\/readings$/, names: ["readings", "reading"], envelope: true },
  { pattern: /\/forecasts\/[^/]+$/, names: ["forecast", "forecasts"], envelope: true },
  { pattern: /\/cmd\/[^/]+\/response$/, names: ["cmd-response", "cmd_response", "command-response"], envelope: true },
  { pattern: /\/cmd\/[^/]+$/, names: ["cmd", "command"], envelope: false },
];

let ajv: Ajv | undefined;

function compiler(): Ajv {
  if (ajv) return ajv;
  const a = new Ajv({ allErrors: true, strict: false });
  // ajv-formats is CommonJS; under NodeNext its plugin is the default export's `default`.
  formats.default(a);
  for (const f of readdirSync(SCHEMA_DIR).filter((n) => n.endsWith(".schema.json"))) {
    const schema = JSON.parse(readFileSync(path.join(SCHEMA_DIR, f), "utf8")) as Record<string, unknown>;
    // Schemas refer to each other by file name.
    a.addSchema(schema, typeof schema.$id === "string" ? undefined : f);
  }
  ajv = a;
  return a;
}

function validator(name: string): ValidateFunction | undefined {
  const file = `${name}.schema.json`;
  if (!existsSync(path.join(SCHEMA_DIR, file))) return undefined;
  const a = compiler();
  const byFile = a.getSchema(file);
  if (byFile) return byFile;
  const schema = JSON.parse(readFileSync(path.join(SCHEMA_DIR, file), "utf8")) as { $id?: string };
  return schema.$id ? a.getSchema(schema.$id) : undefined;
}

function check(v: ValidateFunction, what: string, topic: string, payload: unknown): void {
  if (v(payload)) return;
  const errors = (v.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "invalid"}${e.params ? ` ${JSON.stringify(e.params)}` : ""}`);
  throw new Error(`message on "${topic}" does not match ${what}:\n  ${errors.join("\n  ")}\npayload: ${JSON.stringify(payload).slice(0, 500)}`);
}

/** Validates a payload against the envelope schema alone (for topics outside the contract, e.g. test traffic). */
export function validateEnvelope(topic: string, payload: unknown): void {
  const v = validator("envelope");
  if (!v) throw new Error(`no envelope schema in ${SCHEMA_DIR}`);
  check(v, "envelope.schema.json", topic, payload);
}

/**
 * Validates one message against the schema its topic calls for (picked by the topic's pattern)
 * and, for messages the daemon makes, the envelope. Throws with ajv's errors.
 */
export function validateMessage(topic: string, payload: unknown): void {
  const route = ROUTES.find((r) => r.pattern.test(topic));
  if (!route) throw new Error(`no schema route for topic "${topic}" (not a topic of the MQTT contract)`);
  const name = route.names.find((n) => existsSync(path.join(SCHEMA_DIR, `${n}.schema.json`)));
  if (name === undefined)
    throw new Error(`no schema for topic "${topic}": expected ${route.names.map((n) => `${n}.schema.json`).join(" or ")} in ${SCHEMA_DIR}`);
  if (route.envelope) validateEnvelope(topic, payload);
  check(validator(name)!, `${name}.schema.json`, topic, payload);
}

/** The validator of one command's request (`cmd.schema.json#/definitions/<name>`). */
export function commandRequestValidator(name: string): ValidateFunction {
  const v = compiler().getSchema(`cmd.schema.json#/definitions/${name}`);
  if (!v) throw new Error(`cmd.schema.json has no definition "${name}"`);
  return v;
}
