import { generateKeyPairSync, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { signStatement } from "../../runtime/commands/statement.js";

/**
 * An operator's signing key for tests: the public half is written to `dir` for
 * `commands.public_key`, and `request` makes a signed command request as `cityedge sign` does.
 */
export function testSigner(dir: string, deviceId: string) {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const publicKeyFile = path.join(dir, "ops.pub.pem");
  const privateKeyFile = path.join(dir, "ops.pem");
  writeFileSync(publicKeyFile, publicKey.export({ type: "spki", format: "pem" }));
  writeFileSync(privateKeyFile, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  return {
    publicKeyFile,
    privateKeyFile,
    /** A signed request of `command` with `fields` (its id first, as a sender writes it). */
    request(command: string, id: string, fields: Record<string, unknown>, over: Record<string, unknown> = {}): Record<string, unknown> {
      const now = Date.now();
      const statement: Record<string, unknown> = {
        device: deviceId,
        issued_at: new Date(now - 1000).toISOString(),
        expires_at: new Date(now + 3_600_000).toISOString(),
        nonce: randomBytes(16).toString("base64url"),
        ...fields,
        ...over,
      };
      return { id, ...statement, signature: signStatement(privateKey, command, statement) };
    },
  };
}
