import type { ModbusClient } from "./modbusLib.js";
import type { ModbusSettings } from "./configFields.js";
import type { MeterValue, Quality } from "./meter.js";
import { PRESETS } from "./presets.js";
import { decodeRegisters, planBlocks, WORDS, type Block, type ResolvedRegister } from "./registers.js";
import type { ValueChecker } from "./valueChecker.js";

type ModbusMeterConfig = ModbusSettings;
export type { ModbusClient };

/** The preset's registers, replaced or extended by the configured ones, with orders resolved. */
export function resolveRegisters(cfg: ModbusMeterConfig): ResolvedRegister[] {
  const byName = new Map<string, ResolvedRegister>();
  const resolve = (
    r: Omit<ResolvedRegister, "word_order" | "byte_order"> & { word_order?: "big" | "little" | undefined; byte_order?: "big" | "little" | undefined },
  ): ResolvedRegister => ({
    ...r,
    word_order: r.word_order ?? cfg.word_order,
    byte_order: r.byte_order ?? cfg.byte_order,
  });
  for (const r of PRESETS[cfg.preset]) byName.set(r.name, resolve(r));
  for (const r of cfg.registers) byName.set(r.name, resolve(r));
  if (byName.size === 0) throw new Error(`meter "${cfg.id}": no registers to read (set preset or registers)`);
  return [...byName.values()];
}

/** Every value name a Modbus config reports, with its unit (the preset's, replaced by the configured registers). */
export function modbusValues(cfg: Pick<ModbusMeterConfig, "preset" | "registers">): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of PRESETS[cfg.preset]) out[r.name] = r.unit;
  for (const r of cfg.registers) out[r.name] = r.unit;
  return out;
}

export function planMeter(cfg: ModbusMeterConfig): Block[] {
  return planBlocks(resolveRegisters(cfg), cfg.max_block);
}

interface ModbusError {
  message?: string;
  errno?: string;
  modbusCode?: number;
}

/** What kind of failure an error from modbus-serial is; "error" means the connection is unusable. */
export function classifyError(err: unknown): { quality: Quality; message: string; connectionLost: boolean } {
  const e = (err ?? {}) as ModbusError;
  const message = e.message ?? String(err);
  if (typeof e.modbusCode === "number") return { quality: "exception", message, connectionLost: false };
  if (e.errno === "ETIMEDOUT" || /timed out/i.test(message)) return { quality: "timeout", message, connectionLost: false };
  return { quality: "error", message, connectionLost: true };
}

export interface BlockResult {
  values: Record<string, MeterValue>;
  /** The first failure, when any block failed. */
  failure?: { quality: Quality; message: string; connectionLost: boolean };
}

async function readBlock(client: ModbusClient, block: Block): Promise<number[]> {
  const res =
    block.function === "holding"
      ? await client.readHoldingRegisters(block.start, block.count)
      : await client.readInputRegisters(block.start, block.count);
  return res.data;
}

/**
 * Reads every block (retrying each failed one up to `retries` more times), decodes, scales and
 * checks each register. A failed block flags its registers and leaves the others good.
 */
export async function readBlocks(
  client: ModbusClient,
  blocks: readonly Block[],
  retries: number,
  checker: ValueChecker,
  ts: number,
): Promise<BlockResult> {
  const out: BlockResult = { values: {} };
  for (const block of blocks) {
    let words: number[] | undefined;
    let failure: BlockResult["failure"] = out.failure?.connectionLost ? out.failure : undefined;
    for (let attempt = 0; failure?.connectionLost !== true && attempt <= retries && words === undefined; attempt++) {
      try {
        words = await readBlock(client, block);
      } catch (err) {
        failure = classifyError(err);
        if (failure.connectionLost) break;
      }
    }
    if (words === undefined) {
      out.failure ??= failure;
      for (const r of block.registers) out.values[r.name] = { value: null, unit: r.unit, quality: failure?.quality ?? "error" };
      continue;
    }
    for (const r of block.registers) {
      const off = r.address - block.start;
      const raw = decodeRegisters(words.slice(off, off + WORDS[r.type]), r.type, r.word_order, r.byte_order);
      out.values[r.name] = checker.check(r.name, raw * r.scale, r.unit, ts, { min: r.min, max: r.max });
    }
  }
  return out;
}
