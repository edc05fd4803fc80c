import type { KeyObject } from "node:crypto";
import type { CommandName } from "../config/sections/commands.js";
import { describeWriteError } from "../disk/storageErrors.js";
import type { NonceStore } from "./nonceStore.js";
import { STATEMENT_FIELDS, verifyStatement } from "./statement.js";
import { CommandError } from "./types.js";

export interface StatementPolicy {
  /** The operators' key; undefined when none is configured (or it could not be read: `keyProblem`). */
  publicKey?: KeyObject;
  keyProblem?: string;
  /** Commands that must carry a signed statement (config `commands.signed`). */
  signed: readonly CommandName[];
  deviceId: string;
  /** Fleets whose statements this device accepts (config `commands.fleets`). */
  fleets: readonly string[];
  /** Longest validity (expires_at - issued_at) accepted. */
  maxValidityMs: number;
  /** How far the device's clock may be from the signer's. */
  skewMs: number;
  nonces: NonceStore;
  dataDir: string;
  now?: () => number;
}

/** A statement that passed every check; its nonce is recorded. */
export interface VerifiedStatement {
  scope: { device: string } | { fleet: string };
  issued_at: string;
  expires_at: string;
  nonce: string;
}

const NONCE = /^[A-Za-z0-9_-]{16,128}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

function reject(message: string): never {
  throw new CommandError("rejected", message);
}

/**
 * Checks a request's signed statement, before anything of the command runs (a download
 * included): the signature (against `commands.public_key`), the scope (this device, or a fleet
 * it is in), the validity window (not before issued_at, not after expires_at, at most
 * max_validity, within the clock skew) and the nonce (never accepted before). Returns undefined
 * when the command needs no statement and carries none; throws a CommandError ("rejected")
 * naming the first check that failed.
 */
export function checkStatement(policy: StatementPolicy, command: CommandName, fields: Record<string, unknown>): VerifiedStatement | undefined {
  const signature = fields.signature;
  const required = policy.signed.includes(command);
  if (signature === undefined) {
    if (!required) return undefined;
    reject(
      policy.publicKey
        ? `${command} needs a signed statement (commands.signed): device or fleet, issued_at, expires_at, nonce and signature`
        : `${command} needs a signed statement (commands.signed), but commands.public_key is not set${policy.keyProblem ? ` (${policy.keyProblem})` : ""}; it is refused`,
    );
  }
  if (!policy.publicKey)
    reject(`a signature was given but commands.public_key is ${policy.keyProblem ? `unusable: ${policy.keyProblem}` : "not set"}`);
  if (typeof signature !== "string" || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) reject("signature must be base64");
  if (!verifyStatement(policy.publicKey, command, fields, signature))
    reject("the signature does not verify with commands.public_key (wrong key, or a field differs from what was signed)");
  const { device, fleet, issued_at: issued, expires_at: expires, nonce } = fields;
  let scope: VerifiedStatement["scope"];
  if (typeof device === "string" && fleet === undefined) {
    if (device !== policy.deviceId) reject(`the statement is for device "${device}", not this one ("${policy.deviceId}")`);
    scope = { device };
  } else if (typeof fleet === "string" && device === undefined) {
    if (!policy.fleets.includes(fleet))
      reject(`the statement is for fleet "${fleet}", which this device is not in (commands.fleets: ${policy.fleets.join(", ") || "none"})`);
    scope = { fleet };
  } else {
    reject('the statement must name exactly one of "device" and "fleet"');
  }
  if (typeof issued !== "string" || !ISO.test(issued)) reject('"issued_at" must be an ISO 8601 UTC time, e.g. 2026-03-01T12:00:00Z');
  if (typeof expires !== "string" || !ISO.test(expires)) reject('"expires_at" must be an ISO 8601 UTC time, e.g. 2026-03-01T13:00:00Z');
  if (typeof nonce !== "string" || !NONCE.test(nonce)) reject('"nonce" must be 16..128 characters of letters, digits, "_" or "-"');
  const now = (policy.now ?? Date.now)();
  const from = Date.parse(issued);
  const until = Date.parse(expires);
  if (until <= from) reject(`expires_at (${expires}) is not after issued_at (${issued})`);
  if (until - from > policy.maxValidityMs)
    reject(
      `the statement is valid for ${Math.round((until - from) / 1000)} s, longer than commands.statement_max_validity_s (${policy.maxValidityMs / 1000})`,
    );
  if (from > now + policy.skewMs) reject(`the statement is issued in the future (${issued}; device clock ${new Date(now).toISOString()})`);
  if (until + policy.skewMs < now) reject(`the statement expired at ${expires} (device clock ${new Date(now).toISOString()})`);
  let seen: boolean;
  try {
    seen = policy.nonces.seen(nonce, now);
  } catch (err) {
    reject((err as Error).message);
  }
  if (seen) reject(`nonce ${nonce} was accepted before: a replayed statement is refused`);
  try {
    policy.nonces.record(nonce, until + policy.skewMs, now);
  } catch (err) {
    reject(`cannot record the statement's nonce (${describeWriteError(err, policy.dataDir)}); refused, since a replay could not be told`);
  }
  return { scope, issued_at: issued, expires_at: expires, nonce };
}

/** The request's fields without those of its statement: the command's own parameters. */
export function withoutStatement(fields: Record<string, unknown>): Record<string, unknown> {
  const out = { ...fields };
  for (const k of STATEMENT_FIELDS) delete out[k];
  return out;
}
