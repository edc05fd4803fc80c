/**
 * A token bucket per command: `perMinute` requests a minute, in bursts of up to that many. A
 * request over the limit is refused; so that a flood cannot turn into a flood of answers, only
 * the first refusal in each `quietMs` window of a command is answered (the others are counted).
 */
export class RateLimiter {
  readonly #limits: Readonly<Record<string, number>>;
  readonly #quietMs: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number; lastAnswer: number }>();

  constructor(perMinute: Readonly<Record<string, number>>, quietMs = 10_000, now: () => number = Date.now) {
    this.#limits = perMinute;
    this.#quietMs = quietMs;
    this.#now = now;
  }

  /**
   * Takes a token for `key` (a command name, or "unknown" for every name the device does not
   * know: the table never grows with names a sender makes up). Returns "ok", "refuse" (over the
   * limit, answer it) or "drop" (over the limit, already answered in this window).
   */
  take(key: string): "ok" | "refuse" | "drop" {
    const limit = this.#limits[key] ?? this.#limits.unknown ?? 10;
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (!b) {
      b = { tokens: limit, at: now, lastAnswer: -Infinity };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.min(limit, b.tokens + ((now - b.at) * limit) / 60_000);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return "ok";
    }
    if (now - b.lastAnswer >= this.#quietMs) {
      b.lastAnswer = now;
      return "refuse";
    }
    return "drop";
  }
}
