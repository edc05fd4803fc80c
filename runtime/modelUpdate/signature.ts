import { createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";

/**
 * Reads the operators' public key from the config value: PEM text, or a path to a PEM file
 * (relative to the config file). Throws naming the problem when it is not an Ed25519 key.
 */
export function loadPublicKey(value: string, baseDir: string): KeyObject {
  let pem = value;
  if (!value.includes("-----BEGIN")) {
    const file = path.resolve(baseDir, value);
    try {
      pem = readFileSync(file, "utf8");
    } catch (err) {
      throw new Error(`commands.public_key: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new Error(`commands.public_key: not a PEM public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`commands.public_key: must be an ed25519 key, got ${key.asymmetricKeyType ?? "unknown"}`);
  return key;
}
