import { z } from "zod";
import { driverKey, METER_COMMON, TIMED } from "./configFields.js";
import type { Logger } from "../../runtime/log/logger.js";
import type { MeterDriver, Reading, ReadingListener, MeterHealth } from "./meter.js";
import { defineMeterKind } from "./meterKind.js";
import { ValueChecker } from "./valueChecker.js";
import { VirtualClock, VirtualTicker } from "./virtualClock.js";

export const SIMULATED_METER = z.strictObject({
  driver: driverKey("simulated"),
  ...METER_COMMON,
  ...TIMED,
  backfill_s: z
    .number()
    .min(0)
    .max(400 * 86_400)
    .default(0)
    .describe("Meter time simulated at once on start (into history only, not MQTT), so forecasts can start at once"),
  interval_ms: z.number().int().min(100).max(86_400_000).default(1000).describe("Meter time between readings"),
  base_kw: z.number().min(0).default(40).describe("Night-time base load"),
  peak_kw: z.number().min(0).default(120).describe("Weekday evening peak load"),
  noise: z.number().min(0).max(1).default(0.03).describe("Relative noise on each reading"),
  seed: z.number().int().default(1).describe("Random seed, so runs repeat"),
});

export type SimulatedMeterConfig = z.output<typeof SIMULATED_METER>;

/** What a simulated meter reports: the feeder's power and its energy counter. */
const UNITS = { power_kw: "kW", energy_kwh: "kWh" } as const;

const HOUR = 3_600_000;

const bump = (h: number, centre: number, width: number): number => {
  // distance around the clock, so a bump near midnight wraps
  const d = Math.min(Math.abs(h - centre), 24 - Math.abs(h - centre));
  return Math.exp(-0.5 * (d / width) ** 2);
};

/**
 * Share (0..1) of the way from base to peak load at a UTC instant: a morning rise, a midday
 * plateau and an evening peak on weekdays; later, lower and flatter at weekends.
 */
export function loadShape(ts: number): number {
  const d = new Date(ts);
  const h = d.getUTCHours() + d.getUTCMinutes() / 60 + d.getUTCSeconds() / 3600;
  const weekend = d.getUTCDay() === 0 || d.getUTCDay() === 6;
  if (weekend) return 0.7 * (0.45 * bump(h, 11.5, 2.5) + 0.55 * bump(h, 19, 2)) + 0.05;
  return 0.55 * bump(h, 8, 1.2) + 0.4 * bump(h, 13, 2.5) + 1.0 * bump(h, 18.5, 1.6) * 0.9 + 0.05;
}

/** mulberry32: a small seeded PRNG, so a simulated run repeats exactly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A meter that is not there: power follows a daily and weekly load shape with slowly varying
 * noise, and an energy counter integrates it. For demos; time can run faster than real time,
 * with days of history back-filled at start.
 */
export class SimulatedMeter implements MeterDriver {
  readonly id: string;
  readonly #cfg: SimulatedMeterConfig;
  readonly #log: Logger;
  #ticker: VirtualTicker | undefined;
  #next = 0;
  #energy = 0;
  #noise = 0;
  #rand: () => number = Math.random;
  #emitted = 0;
  #checker: ValueChecker;

  constructor(cfg: SimulatedMeterConfig, log: Logger) {
    this.id = cfg.id;
    this.#cfg = cfg;
    this.#log = log;
    this.#checker = new ValueChecker(cfg.limits, cfg.stale_after_ms);
  }

  async start(onReading: ReadingListener): Promise<void> {
    const step = this.#cfg.interval_ms;
    const now = Math.floor(Date.now() / step) * step;
    this.#rand = prng(this.#cfg.seed);
    this.#energy = 0;
    this.#noise = 0;
    this.#next = now - Math.floor((this.#cfg.backfill_s * 1000) / step) * step;
    let backfilled = 0;
    for (; this.#next < now; this.#next += step, backfilled++) onReading(this.#reading(this.#next, true));
    const clock = new VirtualClock(now, this.#cfg.speed);
    this.#ticker = new VirtualTicker(
      clock,
      () => this.#next,
      (t) => {
        for (; this.#next <= t; this.#next += step) onReading(this.#reading(this.#next, false));
      },
    );
    this.#ticker.start();
    this.#log.info({ backfilled, speed: this.#cfg.speed, interval_ms: step }, "simulated meter started");
  }

  async stop(): Promise<void> {
    this.#ticker?.stop();
    this.#ticker = undefined;
  }

  health(): MeterHealth {
    return { state: "running", emitted: this.#emitted, meter_time: new Date(this.#next).toISOString() };
  }

  #reading(ts: number, backfill: boolean): Reading {
    const c = this.#cfg;
    // AR(1) noise: load wanders rather than jittering independently at every reading.
    const gauss = (this.#rand() + this.#rand() + this.#rand() - 1.5) * 2;
    this.#noise = 0.95 * this.#noise + 0.3 * gauss;
    const power = (c.base_kw + (c.peak_kw - c.base_kw) * loadShape(ts)) * (1 + c.noise * this.#noise);
    this.#energy += (power * c.interval_ms) / HOUR;
    this.#emitted++;
    return {
      meterId: this.id,
      ts,
      values: {
        power_kw: this.#checker.check("power_kw", Math.round(power * 1000) / 1000, UNITS.power_kw, ts),
        energy_kwh: this.#checker.check("energy_kwh", Math.round(this.#energy * 1000) / 1000, UNITS.energy_kwh, ts),
      },
      ...(backfill ? { backfill: true } : {}),
    };
  }
}

export const SIMULATED = defineMeterKind({
  driver: "simulated",
  schema: SIMULATED_METER,
  create: (cfg, deps) => new SimulatedMeter(cfg, deps.log),
  ownClock: true,
  values: () => ({ ...UNITS }),
});
