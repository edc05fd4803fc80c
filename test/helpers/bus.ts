import { DaemonBus } from "../../runtime/events/events.js";
import { feedOutbox } from "../../runtime/mqtt/outboxFeed.js";
import type { MessageSink } from "../../runtime/mqtt/sink.js";
import type { Topics } from "../../runtime/mqtt/topics.js";

/** A bus whose message events reach `sink` on their topics, as the daemon's reach the outbox. */
export function busInto(sink: MessageSink, topics: Topics): DaemonBus {
  const bus = new DaemonBus();
  feedOutbox(bus, sink, topics);
  return bus;
}
