/**
 * Calendar features of the model's input, from the local wall clock of a time zone (the
 * training data's clock: see models/demand_lstm/manifest.json `input.time_zone`).
 */

export interface LocalTime {
  /** Minutes since local midnight, with seconds as a fraction. */
  minuteOfDay: number;
  /** Monday = 0 .. Sunday = 6 (Python's weekday(), as the model was trained). */
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

/** Throws a clear error for a zone the runtime does not know. */
export function checkTimeZone(tz: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
  } catch {
    throw new Error(`unknown time zone "${tz}" (use an IANA name such as "Europe/London" or "UTC")`);
  }
}

export function localTime(ts: number, tz: string): LocalTime {
  if (tz === "UTC" || tz === "Etc/UTC") {
    const d = new Date(ts);
    return { minuteOfDay: d.getUTCHours() * 60 + d.getUTCMinutes() + d.getUTCSeconds() / 60, weekday: (d.getUTCDay() + 6) % 7 };
  }
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone: tz, hourCycle: "h23", weekday: "short", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    formatters.set(tz, f);
  }
  let h = 0;
  let m = 0;
  let s = 0;
  let wd = 0;
  for (const p of f.formatToParts(new Date(ts))) {
    if (p.type === "hour") h = Number(p.value);
    else if (p.type === "minute") m = Number(p.value);
    else if (p.type === "second") s = Number(p.value);
    else if (p.type === "weekday") wd = WEEKDAYS[p.value] ?? 0;
  }
  return { minuteOfDay: h * 60 + m + s / 60, weekday: wd };
}

const offsetFormatters = new Map<string, Intl.DateTimeFormat>();

/** How far the zone's wall clock is ahead of UTC at ts (ms). */
export function utcOffsetMs(ts: number, tz: string): number {
  if (tz === "UTC" || tz === "Etc/UTC") return 0;
  let f = offsetFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    offsetFormatters.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(new Date(ts))) if (part.type !== "literal") p[part.type] = Number(part.value);
  const wall = Date.UTC(p.year!, p.month! - 1, p.day, p.hour, p.minute, p.second);
  return wall - Math.floor(ts / 1000) * 1000;
}

/**
 * Local times of `steps` consecutive steps from `from`. Asks Intl only for the offsets at both
 * ends (and per step only when a clock change falls inside), which keeps a batch of 100 windows
 * of 384 steps cheap.
 */
export function localTimes(from: number, steps: number, stepMs: number, tz: string): LocalTime[] {
  const first = utcOffsetMs(from, tz);
  const same = first === utcOffsetMs(from + (steps - 1) * stepMs, tz);
  return Array.from({ length: steps }, (_, r) => {
    const t = from + r * stepMs;
    const d = new Date(t + (same ? first : utcOffsetMs(t, tz)));
    return { minuteOfDay: d.getUTCHours() * 60 + d.getUTCMinutes() + d.getUTCSeconds() / 60, weekday: (d.getUTCDay() + 6) % 7 };
  });
}

export const CALENDAR_FEATURES = ["sin_time_of_day", "cos_time_of_day", "sin_day_of_week", "cos_day_of_week", "is_weekend"] as const;
export type CalendarFeature = (typeof CALENDAR_FEATURES)[number];

/** The value of one calendar feature for a step starting at ts. */
export function calendarFeature(name: CalendarFeature, t: LocalTime): number {
  const tod = t.minuteOfDay / 1440;
  switch (name) {
    case "sin_time_of_day":
      return Math.sin(2 * Math.PI * tod);
    case "cos_time_of_day":
      return Math.cos(2 * Math.PI * tod);
    case "sin_day_of_week":
      return Math.sin((2 * Math.PI * t.weekday) / 7);
    case "cos_day_of_week":
      return Math.cos((2 * Math.PI * t.weekday) / 7);
    case "is_weekend":
      return t.weekday >= 5 ? 1 : 0;
  }
}
