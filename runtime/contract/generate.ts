import YAML from "yaml";
import { z } from "zod";
import { COMMAND_NAMES } from "../config/sections/commands.js";
import { asyncApiDocument } from "./asyncapi.js";
import { COMMAND, COMMAND_REQUEST, ENVELOPE_SCHEMA, MESSAGES, commandRequestSchema } from "./index.js";

/** One generated file, its path relative to runtime/contract/. */
export interface ContractFile {
  path: string;
  text: string;
}

type Json = Record<string, unknown>;

const SAFE = Number.MAX_SAFE_INTEGER;

/** Drops what zod adds that says nothing to a reader: the ±2^53-1 bounds of every integer, `propertyNames` of plain string keys. */
function tidy(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(tidy);
  if (node === null || typeof node !== "object") return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) {
    if ((k === "maximum" && v === SAFE) || (k === "minimum" && v === -SAFE)) continue;
    if (k === "propertyNames" && JSON.stringify(v) === '{"type":"string"}') continue;
    out[k] = tidy(v);
  }
  return out;
}

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Json {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { target: "draft-7", io }) as Json;
  return tidy(rest) as Json;
}

function schemaFile(name: string, title: string, description: string, body: Json): ContractFile {
  const { description: _d, ...rest } = body;
  const doc = { $schema: "http://json-schema.org/draft-07/schema#", $id: `${name}.schema.json`, title, description, ...rest };
  return { path: `schemas/${name}.schema.json`, text: `${JSON.stringify(doc, null, 2)}\n` };
}

/** Every file generated from the contract: one JSON Schema per message, the envelope's, the commands', and the AsyncAPI document. */
export function contractFiles(): ContractFile[] {
  const files: ContractFile[] = [];
  const envelope = ENVELOPE_SCHEMA.meta() as { title: string; description: string };
  files.push(schemaFile("envelope", envelope.title, envelope.description, jsonSchema(ENVELOPE_SCHEMA, "output")));
  for (const m of MESSAGES) files.push(schemaFile(m.name, m.title, m.description, jsonSchema(m.schema, "output")));
  const definitions = Object.fromEntries(COMMAND_NAMES.map((n) => [n, jsonSchema(commandRequestSchema(n), "input")]));
  files.push(schemaFile(COMMAND.name, COMMAND.title, COMMAND.description, { ...jsonSchema(COMMAND_REQUEST, "input"), definitions }));
  const header = "# Generated from runtime/contract/ by `cityedge contract --write runtime/contract`; do not edit by hand.\n";
  files.push({ path: "asyncapi.yaml", text: header + YAML.stringify(asyncApiDocument(), { lineWidth: 0 }) });
  return files.sort((a, b) => a.path.localeCompare(b.path));
}
