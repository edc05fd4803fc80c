/** How one message is to be published. */
export interface PublishOptions {
  /** Retained by the broker (default false). */
  retain?: boolean;
  /** Payload schema version, the envelope's `v` (default 1). */
  v?: number;
  /**
   * Health and command answers: when the outbox cannot commit (a full disk, an unusable file),
   * the message goes straight to the broker instead of waiting in memory.
   */
  urgent?: boolean;
  /**
   * The numbering the message's `seq` belongs to (default: its topic). Answers to unknown
   * commands share one, so that names a sender makes up create no state on the device.
   */
  seqKey?: string;
}

/**
 * Where pipelines hand the messages they produce. The implementation (the outbox) adds the
 * envelope (`v`, `id`, `device_id`, `ts`, `epoch`, `seq`), stores the message durably and publishes it.
 */
export interface MessageSink {
  publish(topic: string, body: Record<string, unknown>, opts?: PublishOptions): void;
}
