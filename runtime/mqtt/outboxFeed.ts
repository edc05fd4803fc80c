import { QUEUED_MESSAGES, type MessageSpec } from "../contract/index.js";
import type { EventBus } from "../events/eventBus.js";
import type { DaemonBus } from "../events/events.js";
import type { MessageSink } from "./sink.js";
import type { Topics } from "./topics.js";

/**
 * Subscribes `sink` (the outbox) to every message event of the bus: each body goes to its
 * message's topic with its version. Returns the unsubscribe. An error of the sink (a message over
 * the size limit) reaches the emitter.
 */
export function feedOutbox(bus: DaemonBus, sink: MessageSink, topics: Topics): () => void {
  // Each message's event carries that message's body; the loop over all of them cannot say so.
  const untyped = bus as unknown as EventBus<Record<string, never>>;
  const offs = QUEUED_MESSAGES.map((m: MessageSpec) => untyped.on(m.name, (body) => m.publish(sink, topics, body)));
  return () => {
    for (const off of offs) off();
  };
}
