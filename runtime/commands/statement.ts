import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

/**
 * Signed statements: what an operator signs so that a device will carry out a command.
 *
 * The statement is the command's name and every field of the request except its `id`, its
 * `signature`, the sender's envelope fields and the fields a command leaves unsigned (update_model's
 * `url`: the `sha256` pins the file wherever it comes from). Its canonical form is one line,
 * `cityedge-statement-v1 ` followed by the fields as JSON with keys sorted and no spaces; the
 * signature is Ed25519 over those bytes, in base64. Any language can make it: sort the keys,
 * JSON-encode, prefix, sign.
 */
export const STATEMENT_PREFIX = "cityedge-statement-v1 ";

/** Fields of a request that carry the statement, not parameters of the command. */
export const STATEMENT_FIELDS = ["device", "fleet", "issued_at", "expires_at", "nonce", "signature"] as const;

/** Request fields a command leaves out of its statement. */
export const UNSIGNED_FIELDS: Readonly<Record<string, readonly string[]>> = { update_model: ["url"] };

export type StatementValue = string | number | boolean;

/** The bytes that are signed: the command and the signed fields, keys sorted. */
export function canonicalStatement(command: string, fields: Readonly<Record<string, unknown>>): Buffer {
  const unsigned = new Set(["id", "signature", ...(UNSIGNED_FIELDS[command] ?? [])]);
  const signed: Record<string, unknown> = { command };
  for (const k of Object.keys(fields).sort()) {
    if (unsigned.has(k) || k === "command") continue;
    const v = fields[k];
    if (v !== null && typeof v === "object") throw new Error(`statement field "${k}" must be a string, a number or a boolean`);
    if (v !== undefined) signed[k] = v;
  }
  const sorted = Object.fromEntries(
    Object.keys(signed)
      .sort()
      .map((k) => [k, signed[k]]),
  );
  return Buffer.from(STATEMENT_PREFIX + JSON.stringify(sorted), "utf8");
}

/** The base64 Ed25519 signature of a statement. */
export function signStatement(privateKey: KeyObject, command: string, fields: Readonly<Record<string, unknown>>): string {
  return sign(null, canonicalStatement(command, fields), privateKey).toString("base64");
}

/** True when `signatureB64` is `publicKey`'s signature of the statement. */
export function verifyStatement(publicKey: KeyObject, command: string, fields: Readonly<Record<string, unknown>>, signatureB64: string): boolean {
  const sig = Buffer.from(signatureB64, "base64");
  if (sig.length !== 64) return false;
  try {
    return verify(null, canonicalStatement(command, fields), publicKey, sig);
  } catch {
    // A field that cannot be put into canonical form cannot have been signed.
    return false;
  }
}

/** An Ed25519 private key from PEM text; throws naming the problem. */
export function loadPrivateKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${what}: not a PEM private key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`${what}: must be an ed25519 key, got ${key.asymmetricKeyType ?? "unknown"}`);
  return key;
}

/** The public half of a private key, as PEM. */
export function publicPemOf(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
}
