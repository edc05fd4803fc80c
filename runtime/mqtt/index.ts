import path from "node:path";
import { EmbeddedBroker } from "../broker/embeddedBroker.js";
import type { PartContext } from "../part.js";
import { Outbox } from "../outbox/outbox.js";
import type { Part } from "../part.js";
import { MqttPublisher } from "./publisher.js";

export type { MessageSink } from "./sink.js";
export { Topics, assertPublishable } from "./topics.js";
export { MqttPublisher, type MessageHandler } from "./publisher.js";

export interface MqttWiring {
  outbox: Outbox;
  /** The uplink; `publisher.subscribe(filter, handler)` receives commands. */
  publisher: MqttPublisher;
  /** In start order: embedded broker (when enabled), outbox, publisher. */
  parts: Part[];
}

/** Builds the MQTT side of the daemon: the embedded broker, the outbox and the publisher. */
export function buildMqtt(ctx: PartContext): MqttWiring {
  const cfg = ctx.config;
  const { inflight, ...outboxSettings } = cfg.outbox;
  const outbox = ctx.part(
    new Outbox({
      file: path.resolve(ctx.dataDir, cfg.outbox.file),
      deviceId: cfg.device_id,
      maxRows: cfg.outbox.max_rows,
      maxBytes: cfg.outbox.max_bytes,
      maxMessageBytes: cfg.outbox.max_message_bytes,
      maxMemoryMessages: cfg.outbox.max_memory_messages,
      sync: cfg.outbox.synchronous,
      fsyncIntervalMs: cfg.outbox.fsync_interval_ms,
      log: ctx.log.child({ module: "outbox" }),
      metrics: ctx.metrics,
      events: { bus: ctx.bus, topics: ctx.topics },
    }),
    { slice: outboxSettings },
  );
  const publisher = ctx.part(
    new MqttPublisher({
      mqtt: cfg.mqtt,
      deviceId: cfg.device_id,
      baseDir: ctx.loaded.baseDir,
      ...(ctx.loaded.referenced ? { referenced: ctx.loaded.referenced } : {}),
      topics: ctx.topics,
      outbox,
      inflight,
      log: ctx.log.child({ module: "mqtt" }),
      metrics: ctx.metrics,
    }),
    { slice: { mqtt: cfg.mqtt, inflight }, deps: [outbox] },
  );
  const parts: Part[] = [];
  if (cfg.broker.enabled) {
    const broker = new EmbeddedBroker({ host: cfg.broker.host, port: cfg.broker.port, log: ctx.log.child({ module: "broker" }) });
    parts.push(ctx.part(broker, { slice: cfg.broker }));
  }
  parts.push(outbox, publisher);
  return { outbox, publisher, parts };
}
