import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import path from "node:path";

/** Most nonces remembered at once; with the rate limits and the validity cap it is never reached in use. */
const MAX_NONCES = 20_000;

/**
 * The nonces of accepted signed statements, each kept until its statement expires, in a file
 * under the data directory, replaced atomically: a replayed statement is refused, also after a
 * restart. A nonce is recorded before its command runs; when that cannot be written (a full
 * disk), the statement is refused, since a replay could not be told later.
 */
export class NonceStore {
  readonly file: string;
  #nonces: Map<string, number> | undefined;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, "commands", "nonces.json");
  }

  #load(): Map<string, number> {
    if (this.#nonces) return this.#nonces;
    let text: string;
    try {
      text = readFileSync(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`nonce store ${this.file}: ${(err as Error).message}`);
      this.#nonces = new Map();
      return this.#nonces;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new Error(
        `nonce store ${this.file} is not valid JSON (${(err as Error).message}); signed commands are refused until it is fixed or removed`,
      );
    }
    const map = new Map<string, number>();
    if (doc !== null && typeof doc === "object") for (const [k, v] of Object.entries(doc)) if (typeof v === "number") map.set(k, v);
    this.#nonces = map;
    return map;
  }

  /** True when the nonce was accepted before and its statement has not expired. */
  seen(nonce: string, nowMs: number): boolean {
    const until = this.#load().get(nonce);
    return until !== undefined && until >= nowMs;
  }

  /** Records an accepted nonce until `untilMs`; throws when it cannot be made durable. */
  record(nonce: string, untilMs: number, nowMs: number): void {
    const map = this.#load();
    for (const [k, until] of map) if (until < nowMs) map.delete(k);
    if (map.size >= MAX_NONCES) throw new Error(`${map.size} unexpired nonces are remembered already`);
    map.set(nonce, untilMs);
    try {
      this.#save(map);
    } catch (err) {
      map.delete(nonce);
      throw err;
    }
  }

  #save(map: Map<string, number>): void {
    mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${randomBytes(4).toString("hex")}.tmp`;
    try {
      const fd = openSync(tmp, "w", 0o600);
      try {
        writeSync(fd, `${JSON.stringify(Object.fromEntries(map))}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  }
}
