import { localTimes, type LocalTime } from "../calendar.js";

const DAY_MS = 86_400_000;

/**
 * A series at one step: `values[i]` is the value of the step that starts at `start + i * stepMs`
 * (NaN where nothing is known). Everything a forecaster candidate sees.
 */
export interface StepSeries {
  start: number;
  stepMs: number;
  values: Float64Array;
  /** IANA zone of the local clock that the daily and weekly seasons follow. */
  timeZone: string;
}

/** Steps per day and per week; undefined where a day (a week) is not a whole number of steps. */
export function seasons(stepMs: number): { day: number | undefined; week: number | undefined } {
  const per = (span: number): number | undefined => (stepMs > 0 && span % stepMs === 0 ? span / stepMs : undefined);
  return { day: per(DAY_MS), week: per(7 * DAY_MS) };
}

/** The local times of the first `steps` steps of a series (may reach past its end, into a horizon). */
const timesCache = new WeakMap<StepSeries, LocalTime[]>();
export function stepTimes(s: StepSeries, steps: number): LocalTime[] {
  let t = timesCache.get(s);
  if (!t || t.length < steps) {
    t = localTimes(s.start, Math.max(steps, s.values.length), s.stepMs, s.timeZone);
    timesCache.set(s, t);
  }
  return t;
}

export const iso = (t: number): string => new Date(t).toISOString();

/** A duration in the largest unit that keeps it whole-ish: "30 min", "1 h", "1 d". */
export function formatStep(ms: number): string {
  if (ms % DAY_MS === 0) return `${ms / DAY_MS} d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}
