import type { z } from "zod";
import type { Logger } from "../../runtime/log/logger.js";
import type { MeterDriver } from "./meter.js";
import type { RtuLines } from "./rtuLine.js";

/** What a meter kind's factory may use besides its config. */
export interface DriverDeps {
  /** The meter's logger (with the meter's id and driver). */
  log: Logger;
  /** Directory relative file paths (replay CSVs) are resolved against. */
  baseDir: string;
  /** Serial lines shared by the RTU meters of one run. */
  rtuLines: RtuLines;
}

/**
 * One kind of meter, in its own file: its config schema (a strict object whose `driver` is the
 * kind's name), its factory and what the rest of the daemon needs to know about it. The config
 * union, `createMeterDriver` and everything that used to switch on the driver's name are built
 * from the list in `kinds.ts`.
 */
export interface MeterKind<Name extends string = string, S extends z.ZodObject = z.ZodObject> {
  readonly driver: Name;
  readonly schema: S;
  create(cfg: z.output<S>, deps: DriverDeps): MeterDriver;
  /**
   * Own clock: readings carry the meter's own (accelerated, replayed) time, not the wall clock.
   * Its forecast steps then complete by its readings only, and its history starts again with it.
   */
  readonly ownClock: boolean;
  /** The values a config makes the meter report, by name, each with its unit. */
  values(cfg: z.output<S>): Record<string, string>;
}

export function defineMeterKind<Name extends string, S extends z.ZodObject>(k: MeterKind<Name, S>): MeterKind<Name, S> {
  return k;
}
