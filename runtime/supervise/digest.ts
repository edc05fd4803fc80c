import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

/**
 * SHA-256 of a file's bytes, or why it cannot be read: part of a slice for parts that read a file
 * the config names (a model manifest), so that a reload reopens them when the file changed.
 */
export function fileDigest(file: string): string {
  try {
    return createHash("sha256").update(readFileSync(file)).digest("hex");
  } catch (err) {
    return `unreadable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}
