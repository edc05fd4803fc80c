import type { Logger } from "../log/logger.js";

type Listener<T> = (data: T) => void;

/** How often at most a warning about events nobody listens to is logged, per event. */
const UNHEARD_LOG_EVERY_MS = 10_000;

/**
 * A small typed, synchronous event bus: parts talk through it instead of calling or parsing each
 * other. `emit` calls every listener in the order they subscribed; a listener that throws does
 * not keep the others from running, and the error is rethrown to the emitter afterwards (so a
 * producer still learns that, say, the outbox refused its message). Parts subscribe in `start()`
 * and call the returned function in `stop()`.
 */
export class EventBus<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  readonly #unheard = new Map<keyof Events, { count: number; loggedAt: number }>();
  readonly #log: Logger | undefined;

  /** `log` (optional) is told about events emitted while nobody listens: nothing is dropped unseen. */
  constructor(log?: Logger) {
    this.#log = log;
  }

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    const entry = listener as Listener<never>;
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  /** Hands `data` to every listener of `event`; returns how many heard it. */
  emit<K extends keyof Events>(event: K, data: Events[K]): number {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) {
      this.#noteUnheard(event);
      return 0;
    }
    const errors: unknown[] = [];
    // A copy: a listener may unsubscribe (or subscribe another) while it runs.
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(data);
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} listeners of "${String(event)}" failed`);
    return set.size;
  }

  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** Events emitted while nobody listened, by event (since the bus was made). */
  unheard(): Record<string, number> {
    return Object.fromEntries([...this.#unheard].map(([k, v]) => [String(k), v.count]));
  }

  #noteUnheard(event: keyof Events): void {
    const u = this.#unheard.get(event) ?? { count: 0, loggedAt: -Infinity };
    u.count++;
    this.#unheard.set(event, u);
    const now = Date.now();
    if (this.#log && now - u.loggedAt >= UNHEARD_LOG_EVERY_MS) {
      u.loggedAt = now;
      this.#log.warn({ event: String(event), total: u.count }, `event "${String(event)}" emitted while nothing listens to it: it is lost`);
    }
  }
}
