import type { BodyOf, QueuedMessage, ReadingsBody } from "../contract/index.js";
import { EventBus } from "./eventBus.js";

/** Every message that goes through the outbox, as an event named after it, carrying its body. */
export type MessageEvents = { [M in QueuedMessage as M["name"]]: BodyOf<M> };

/**
 * The events of the daemon. Producers emit message events (a typed body each); the outbox
 * publishes them, and the history recorder keeps readings and counts.
 */
export interface DaemonEvents extends MessageEvents {
  /** A back-filled reading (a replay's or simulation's past): kept in history, never published. */
  backfill: ReadingsBody;
  /** A meter on its own clock (replay, simulation) starts again from its beginning: its history is void. */
  "meter-clock-reset": { meter_id: string };
}

/** The daemon's bus; it outlives config reloads, like the metrics registry. */
export class DaemonBus extends EventBus<DaemonEvents> {}
