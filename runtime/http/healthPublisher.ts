import type { Logger } from "../log/logger.js";
import type { DaemonBus } from "../events/events.js";
import type { Part, PartHealth } from "../part.js";
import type { HealthSummary } from "./healthSummary.js";

export interface HealthPublisherOptions {
  bus: DaemonBus;
  everyMs: number;
  summary: () => HealthSummary;
  log: Logger;
}

/** The health publisher in health: summaries published and how often. */
export type HealthPublisherHealth = PartHealth & { published: number; every_ms: number };

/** Publishes the health summary to `<base>/health` every `everyMs`, and once at start. */
export class HealthPublisher implements Part {
  readonly name = "health-publisher";
  readonly kind = "health-publisher";
  readonly #o: HealthPublisherOptions;
  #timer: NodeJS.Timeout | undefined;
  #first: NodeJS.Timeout | undefined;
  #published = 0;

  constructor(opts: HealthPublisherOptions) {
    this.#o = opts;
  }

  async start(): Promise<void> {
    this.#timer = setInterval(() => this.publish(), this.#o.everyMs);
    // The first summary once the other parts had a moment to connect, not mid-start.
    this.#first = setTimeout(() => this.publish(), Math.min(this.#o.everyMs, 2000));
  }

  publish(): void {
    try {
      // The envelope carries device_id; the outbox refuses a body that sets it.
      const { device_id: _deviceId, ...body } = this.#o.summary();
      this.#o.bus.emit("health", body);
      this.#published++;
    } catch (err) {
      this.#o.log.error({ err }, "cannot publish the health summary");
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#first);
    this.#timer = undefined;
    this.#first = undefined;
  }

  health(): HealthPublisherHealth {
    return { state: this.#timer ? "running" : "stopped", published: this.#published, every_ms: this.#o.everyMs };
  }
}
