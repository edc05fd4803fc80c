import type { PartHealth } from "../../runtime/part.js";

/**
 * Why a value cannot be trusted. Only "good" values enter forecast windows; the others are
 * published (so a subscriber sees the fault) and kept in raw history with their flag.
 */
export type Quality = "good" | "timeout" | "exception" | "nan" | "out_of_range" | "stale" | "error";

export interface MeterValue {
  /** The value after scaling; null when none could be read. */
  value: number | null;
  unit: string;
  quality: Quality;
}

/** One reading of a meter: every value it reports at one instant. */
export interface Reading {
  meterId: string;
  /** When the values were measured (ms since the epoch); the meter's own clock for replays. */
  ts: number;
  values: Record<string, MeterValue>;
  /** Detail for a bad quality, e.g. the Modbus exception, free of credentials. */
  error?: string;
  /** Back-filled history: recorded, not published. */
  backfill?: boolean;
}

export type ReadingListener = (reading: Reading) => void;

/** One meter in health: its state and what its kind counts (each driver fills the fields that apply to it). */
export type MeterHealth = PartHealth & {
  /** Readings published (set by the meters part). */
  readings?: number;
  /** Polls made (Modbus). */
  polls?: number;
  /** The link to the meter or its broker is up (Modbus TCP, MQTT). */
  connected?: boolean;
  /** The serial line (Modbus RTU). */
  line?: string;
  /** Messages received (MQTT). */
  messages?: number;
  /** Readings emitted (replay, simulated). */
  emitted?: number;
  /** Replay: rows read from the file so far. */
  rows_read?: number;
  /** Simulated: the meter's own clock. */
  meter_time?: string;
};

/**
 * A source of readings. Every kind (Modbus TCP/RTU, MQTT-in, replay, simulated) implements it
 * in its own file. `start()` begins delivering readings to the listener and must not throw for
 * an unreachable meter (that is a reading with a bad quality, retried next poll); `stop()`
 * releases every timer and socket.
 */
export interface MeterDriver {
  readonly id: string;
  start(onReading: ReadingListener): Promise<void>;
  stop(): Promise<void>;
  health(): MeterHealth;
}
