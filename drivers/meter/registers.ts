import type { RegisterConfig } from "./configFields.js";

export type Order = "big" | "little";

export const WORDS: Record<RegisterConfig["type"], number> = { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, float64: 4 };

/** A register entry with its orders resolved. */
export interface ResolvedRegister extends RegisterConfig {
  word_order: Order;
  byte_order: Order;
}

/**
 * Decodes one value from its 16-bit register words, as read off the wire (words[0] is the
 * register at the lowest address). word_order "big" means the most significant word comes
 * first; byte_order "little" means each word's two bytes are swapped.
 */
export function decodeRegisters(words: readonly number[], type: RegisterConfig["type"], wordOrder: Order, byteOrder: Order): number {
  const n = WORDS[type];
  if (words.length !== n) throw new Error(`${type} needs ${n} register words, got ${words.length}`);
  const ordered = wordOrder === "big" ? words : [...words].reverse();
  const buf = Buffer.alloc(n * 2);
  ordered.forEach((w, i) => {
    if (!Number.isInteger(w) || w < 0 || w > 0xffff) throw new Error(`register word ${i} must be 0..65535, got ${w}`);
    if (byteOrder === "big") buf.writeUInt16BE(w, i * 2);
    else buf.writeUInt16LE(w, i * 2);
  });
  switch (type) {
    case "int16":
      return buf.readInt16BE(0);
    case "uint16":
      return buf.readUInt16BE(0);
    case "int32":
      return buf.readInt32BE(0);
    case "uint32":
      return buf.readUInt32BE(0);
    case "float32":
      return buf.readFloatBE(0);
    case "float64":
      return buf.readDoubleBE(0);
  }
}

/** The inverse of decodeRegisters: the words a server holds for a value. Used by the test server and the bench. */
export function encodeRegisters(value: number, type: RegisterConfig["type"], wordOrder: Order, byteOrder: Order): number[] {
  const n = WORDS[type];
  const buf = Buffer.alloc(n * 2);
  switch (type) {
    case "int16":
      buf.writeInt16BE(value, 0);
      break;
    case "uint16":
      buf.writeUInt16BE(value, 0);
      break;
    case "int32":
      buf.writeInt32BE(value, 0);
      break;
    case "uint32":
      buf.writeUInt32BE(value, 0);
      break;
    case "float32":
      buf.writeFloatBE(value, 0);
      break;
    case "float64":
      buf.writeDoubleBE(value, 0);
      break;
  }
  const words: number[] = [];
  for (let i = 0; i < n; i++) words.push(byteOrder === "big" ? buf.readUInt16BE(i * 2) : buf.readUInt16LE(i * 2));
  return wordOrder === "big" ? words : words.reverse();
}

/** A run of registers read in one request. */
export interface Block {
  function: "holding" | "input";
  start: number;
  count: number;
  registers: ResolvedRegister[];
}

/**
 * Groups registers into as few requests as possible: same table, and the span from the first
 * to the last word at most maxBlock registers (small holes between them are read and ignored).
 */
export function planBlocks(registers: readonly ResolvedRegister[], maxBlock: number): Block[] {
  const blocks: Block[] = [];
  for (const fn of ["holding", "input"] as const) {
    const sorted = registers.filter((r) => r.function === fn).sort((a, b) => a.address - b.address);
    let cur: Block | undefined;
    for (const r of sorted) {
      const end = r.address + WORDS[r.type];
      if (cur && end - cur.start <= maxBlock) {
        cur.count = Math.max(cur.count, end - cur.start);
        cur.registers.push(r);
      } else {
        cur = { function: fn, start: r.address, count: WORDS[r.type], registers: [r] };
        blocks.push(cur);
      }
    }
  }
  return blocks;
}
