import type { MeterValue, Quality } from "./meter.js";

export interface Limits {
  min?: number | undefined;
  max?: number | undefined;
}

/**
 * Flags values that cannot be trusted: NaN/Infinity, outside the configured range, or frozen
 * (unchanged for stale_after_ms). Negative values are valid unless a limit says otherwise:
 * meters report export and net metering as negative power.
 */
export class ValueChecker {
  readonly #limits: Record<string, Limits>;
  readonly #staleAfterMs: number | undefined;
  readonly #lastChange = new Map<string, { value: number; since: number }>();

  constructor(limits: Record<string, Limits>, staleAfterMs: number | undefined) {
    this.#limits = limits;
    this.#staleAfterMs = staleAfterMs;
  }

  check(name: string, value: number, unit: string, ts: number, extra?: Limits): MeterValue {
    if (!Number.isFinite(value)) return { value: null, unit, quality: "nan" };
    const lim = { ...extra, ...this.#limits[name] };
    let quality: Quality = "good";
    if ((lim.min !== undefined && value < lim.min) || (lim.max !== undefined && value > lim.max)) quality = "out_of_range";
    if (this.#staleAfterMs !== undefined) {
      const prev = this.#lastChange.get(name);
      if (!prev || prev.value !== value) this.#lastChange.set(name, { value, since: ts });
      else if (ts - prev.since >= this.#staleAfterMs && quality === "good") quality = "stale";
    }
    return { value, unit, quality };
  }
}
