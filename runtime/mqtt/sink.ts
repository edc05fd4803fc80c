/**
 * Where pipelines hand the messages they produce. The implementation (the outbox) adds the
 * envelope (`v`, `id`, `device_id`, `ts`, `seq`), stores the message durably and publishes it.
 */
export interface MessageSink {
  publish(topic: string, body: Record<string, unknown>, opts?: { retain?: boolean; v?: number }): void;
}
