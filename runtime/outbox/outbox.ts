import { randomUUID } from "node:crypto";
import { ENVELOPE_KEYS } from "../contract/fields.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { DaemonBus } from "../events/events.js";
import { feedOutbox } from "../mqtt/outboxFeed.js";
import type { MessageSink } from "../mqtt/sink.js";
import type { Topics } from "../mqtt/topics.js";
import { assertPublishable } from "../mqtt/topics.js";
import type { Part, PartHealth } from "../part.js";
import { OutboxStore, type NewMessage, type StoredMessage, type SyncMode } from "./outboxStore.js";

export interface OutboxOptions {
  /** The SQLite file. */
  file: string;
  deviceId: string;
  maxRows: number;
  maxBytes: number;
  /** Largest message accepted, envelope included (default 256 KiB). */
  maxMessageBytes?: number;
  sync: SyncMode;
  /** With sync "background": the WAL is fsynced this long after a commit at the latest (default 100 ms). */
  fsyncIntervalMs?: number;
  log: Logger;
  metrics?: Metrics;
  /** The bus whose message events the outbox publishes (from start to stop), with the topics they go to. */
  events?: { bus: DaemonBus; topics: Topics };
}

/** What the outbox reports about itself (health, the health topic, metrics). */
export interface OutboxStats {
  /** Messages committed and not yet acknowledged by the broker. */
  depth: number;
  bytes: number;
  /** Messages dropped by the quota since the outbox file was created. */
  dropped: number;
  /** Messages accepted and not yet committed (normally 0 outside one event-loop tick). */
  pending: number;
  /** Committed messages the reader has not passed yet, kept in memory. */
  hot: number;
}

interface Pending {
  topic: string;
  /** The body's JSON; the envelope is put in front of it when the seq is known. */
  bodyJson: string;
  id: string;
  ts: string;
  v: number;
  retain: boolean;
}

/** Commit at once when this many messages wait in one tick, so a burst cannot pile up in memory. */
const FLUSH_AT = 2000;
/** While the SQLite file cannot be written (not started, failed, disk full) at most this many wait in memory. */
const MAX_PENDING = 20_000;
const RETRY_MS = 1000;
const DROP_LOG_EVERY_MS = 10_000;
/** Most recently committed messages kept in memory, so the publisher need not read them back from SQLite. */
const HOT_MAX = 32_768;
const HOT_MAX_CHARS = 16 * 1024 * 1024;
/** Room taken by the envelope (v, id, device_id, ts, seq) in front of a body. */
const ENVELOPE_BYTES = 200;
const ACK_BATCH = 4096;
const ACK_FLUSH_MS = 50;

/**
 * The durable outbox: the MessageSink every pipeline publishes to. `publish()` stamps the
 * envelope and queues the message; all messages of one event-loop tick are committed to SQLite
 * in one transaction, together with the per-topic seq. Only committed messages are ever handed to
 * MQTT, and they leave the outbox only when the broker acknowledged them (`ack()`).
 */
export class Outbox implements MessageSink, Part {
  readonly name = "outbox";
  readonly kind = "outbox";
  readonly #opts: OutboxOptions;
  readonly #log: Logger;
  #store: OutboxStore | undefined;
  #seqs = new Map<string, number>();
  /** The latest committed messages in id order, from `#hotHead` on; every row after `#hot[#hotHead].id - 1` is here. */
  #hot: StoredMessage[] = [];
  #hotHead = 0;
  #hotChars = 0;
  #pending: Pending[] = [];
  #acked: number[] = [];
  #tick: NodeJS.Immediate | undefined;
  #retry: NodeJS.Timeout | undefined;
  #ackTimer: NodeJS.Timeout | undefined;
  #fsyncTimer: NodeJS.Timeout | undefined;
  #fsyncing: Promise<void> | undefined;
  #dropped = 0;
  #droppedSinceLog = 0;
  #lastDropLog = 0;
  #stopped = false;
  #error: string | undefined;
  readonly #listeners = new Set<() => void>();
  #unfeed: (() => void) | undefined;

  constructor(opts: OutboxOptions) {
    this.#opts = opts;
    this.#log = opts.log;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    // First, so messages emitted while the file cannot be opened wait in memory as publish() keeps them.
    const ev = this.#opts.events;
    if (ev && !this.#unfeed) this.#unfeed = feedOutbox(ev.bus, this, ev.topics);
    const store = new OutboxStore(this.#opts.file, this.#opts.sync);
    this.#store = store;
    this.#seqs = store.seqs();
    this.#dropped = store.counter("dropped");
    this.#updateGauges();
    this.#log.info({ file: this.#opts.file, depth: store.rows, bytes: store.bytes, dropped: this.#dropped, topics: this.#seqs.size }, "outbox open");
    this.flush();
  }

  async stop(): Promise<void> {
    this.flush();
    this.#stopped = true;
    if (this.#fsyncTimer) {
      clearTimeout(this.#fsyncTimer);
      this.#fsyncTimer = undefined;
      await this.#syncWal();
    }
    await this.#fsyncing;
    if (this.#tick) clearImmediate(this.#tick);
    if (this.#retry) clearTimeout(this.#retry);
    if (this.#ackTimer) clearTimeout(this.#ackTimer);
    this.#tick = undefined;
    this.#retry = undefined;
    this.#ackTimer = undefined;
    if (this.#pending.length > 0)
      this.#log.error({ lost: this.#pending.length, error: this.#error }, "outbox stopped with messages it could not commit");
    this.#store?.close();
    this.#store = undefined;
    this.rewind();
    this.#unfeed?.();
    this.#unfeed = undefined;
  }

  publish(topic: string, body: Record<string, unknown>, opts?: { retain?: boolean; v?: number }): void {
    assertPublishable(topic);
    if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error(`publish to "${topic}": body must be a JSON object`);
    for (const k of ENVELOPE_KEYS) {
      if (Object.hasOwn(body, k))
        throw new Error(`publish to "${topic}": body must not set envelope key "${k}" (the outbox sets ${ENVELOPE_KEYS.join(", ")})`);
    }
    const bodyJson = JSON.stringify(body);
    const max = this.#opts.maxMessageBytes ?? 262_144;
    // Length in UTF-16 units is a lower bound of the UTF-8 size: only measure when it may be close.
    if (bodyJson.length + ENVELOPE_BYTES > max / 4) {
      const size = Buffer.byteLength(bodyJson) + ENVELOPE_BYTES;
      if (size > max) throw new Error(`publish to "${topic}": message is ${size} bytes, more than outbox.max_message_bytes (${max})`);
    }
    if (this.#stopped) {
      this.#countDrops(1, "published after the outbox stopped");
      return;
    }
    this.#pending.push({ topic, bodyJson, id: randomUUID(), ts: new Date().toISOString(), v: opts?.v ?? 1, retain: opts?.retain ?? false });
    if (this.#pending.length >= FLUSH_AT && this.#store) this.flush();
    else this.#schedule();
  }

  /** Commits every queued message and deletes every acknowledged one, now. */
  flush(): void {
    if (this.#tick) clearImmediate(this.#tick);
    this.#tick = undefined;
    if (this.#ackTimer) clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const store = this.#store;
    if (!store) {
      this.#boundPending();
      return;
    }
    if (this.#pending.length === 0) {
      if (this.#acked.length === 0) return;
      const ids = this.#acked;
      this.#acked = [];
      try {
        store.remove(ids);
      } catch (err) {
        // A lost delete only means a duplicate later (same id), never a loss.
        this.#log.error({ err, count: ids.length }, "outbox: could not delete acknowledged messages; they may be sent again");
      }
      this.#updateGauges();
      return;
    }
    const seqs = new Map<string, number>();
    const deviceJson = JSON.stringify(this.#opts.deviceId);
    const batch: NewMessage[] = this.#pending.map((p) => {
      const seq = (seqs.get(p.topic) ?? this.#seqs.get(p.topic) ?? 0) + 1;
      seqs.set(p.topic, seq);
      const head = `{"v":${p.v},"id":"${p.id}","device_id":${deviceJson},"ts":"${p.ts}","seq":${seq}`;
      return { topic: p.topic, seq, retain: p.retain, payload: p.bodyJson === "{}" ? `${head}}` : `${head},${p.bodyJson.slice(1)}` };
    });
    let stored: StoredMessage[];
    try {
      // The deletes of acknowledged messages ride in the same commit; if it fails they wait for the retry.
      stored = store.append(batch, this.#acked);
    } catch (err) {
      this.#error = (err as Error).message;
      this.#log.error({ err, waiting: this.#pending.length }, "outbox: commit failed; retrying");
      this.#boundPending();
      this.#retry ??= setTimeout(() => {
        this.#retry = undefined;
        this.flush();
      }, RETRY_MS);
      return;
    }
    this.#error = undefined;
    this.#acked = [];
    for (const [topic, seq] of seqs) this.#seqs.set(topic, seq);
    this.#pending = [];
    this.#opts.metrics?.counter("cityedge_outbox_committed_total").inc(undefined, batch.length);
    this.#keepHot(stored);
    if (this.#opts.sync === "background") this.#fsyncTimer ??= setTimeout(() => void this.#syncWal(), this.#opts.fsyncIntervalMs ?? 100);
    const dropped = store.enforceQuota(this.#opts.maxRows, this.#opts.maxBytes);
    if (dropped > 0) {
      this.rewind();
      this.#countDrops(dropped, "outbox quota exceeded; oldest messages dropped");
    }
    this.#updateGauges();
    for (const fn of this.#listeners) fn();
  }

  /** Calls `fn` after each commit of new messages; returns the unsubscribe function. */
  onCommit(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Committed messages with ids above `afterId`, oldest first: from memory when they are all
   * there, else from SQLite. There is one reader (the publisher), whose cursor only moves forward
   * until it starts over with {@link rewind}: messages at or before `afterId` leave the memory
   * copy here, so it holds what is still to be sent, not the last HOT_MAX messages (which took
   * minutes to fill and looked like a leak).
   */
  read(afterId: number, limit: number): StoredMessage[] {
    const first = this.#hot[this.#hotHead];
    if (first && afterId >= first.id - 1) {
      let lo = this.#hotHead;
      let hi = this.#hot.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.#hot[mid]!.id <= afterId) lo = mid + 1;
        else hi = mid;
      }
      const out = this.#hot.slice(lo, lo + limit);
      for (let i = this.#hotHead; i < lo; i++) this.#hotChars -= this.#hot[i]!.payload.length;
      this.#hotHead = lo;
      this.#compactHot();
      return out;
    }
    return this.#store?.after(afterId, limit) ?? [];
  }

  /**
   * Forgets the in-memory copy of recent messages: call when starting over from the oldest
   * unacknowledged message (a new connection), since some of them may be acknowledged already.
   */
  rewind(): void {
    this.#hot = [];
    this.#hotHead = 0;
    this.#hotChars = 0;
  }

  /** The broker acknowledged the message: it leaves the outbox (deleted with the next commit). */
  ack(id: number): void {
    this.#acked.push(id);
    // Deletes are batched over a short time: a lost delete only means a duplicate, and fewer,
    // larger delete transactions cost much less than one per tick at full speed.
    if (this.#acked.length >= ACK_BATCH) this.#schedule();
    else
      this.#ackTimer ??= setTimeout(() => {
        this.#ackTimer = undefined;
        this.flush();
      }, ACK_FLUSH_MS);
  }

  /**
   * The broker refused the message for good (an MQTT 5 PUBACK reason code such as "Not
   * authorized"): sending it again would be refused again and hold up the queue, so it leaves
   * the outbox and is counted as dropped.
   */
  reject(id: number, topic: string, reason: string): void {
    this.ack(id);
    this.#opts.metrics?.counter("cityedge_outbox_rejected_total").inc();
    this.#log.error({ topic, reason }, "the broker refused a message; it is dropped and counted");
    this.#countDrops(1, "message refused by the broker; dropped");
  }

  /** A named counter kept in the outbox file (e.g. the MQTT connection number); 0 when unset or not open. */
  counter(name: string): number {
    return this.#store?.counter(name) ?? 0;
  }

  setCounter(name: string, value: number): void {
    this.#store?.setCounter(name, value);
  }

  /** Background fsyncs of the WAL done since start (sync "background"). */
  get walSyncs(): number {
    return this.#store?.walSyncs ?? 0;
  }

  /** The last committed seq of a topic (0 when none). */
  seq(topic: string): number {
    return this.#seqs.get(topic) ?? 0;
  }

  stats(): OutboxStats {
    return {
      depth: this.#store?.rows ?? 0,
      bytes: this.#store?.bytes ?? 0,
      dropped: this.#dropped,
      pending: this.#pending.length,
      hot: this.#hot.length - this.#hotHead,
    };
  }

  health(): PartHealth {
    const s = this.stats();
    const state = this.#stopped ? "stopped" : !this.#store ? "starting" : this.#error ? "degraded" : "running";
    return { state, ...(this.#error ? { error: this.#error } : {}), depth: s.depth, bytes: s.bytes, dropped: s.dropped, pending: s.pending };
  }

  #keepHot(stored: StoredMessage[]): void {
    for (const m of stored) {
      this.#hot.push(m);
      this.#hotChars += m.payload.length;
    }
    // Bounded in count and in size: messages may be up to max_message_bytes each.
    while (this.#hot.length - this.#hotHead > HOT_MAX || (this.#hotChars > HOT_MAX_CHARS && this.#hot.length - this.#hotHead > 1)) {
      this.#hotChars -= this.#hot[this.#hotHead]!.payload.length;
      this.#hotHead++;
    }
    this.#compactHot();
  }

  /** Compacts once the trimmed head is half the array (amortized O(1)), so trimmed messages are freed. */
  #compactHot(): void {
    if (this.#hotHead > 0 && this.#hotHead * 2 >= this.#hot.length) {
      this.#hot = this.#hot.slice(this.#hotHead);
      this.#hotHead = 0;
    }
  }

  /** Background durability: one WAL fsync at a time, off the event loop; commits during it get the next. */
  async #syncWal(): Promise<void> {
    this.#fsyncTimer = undefined;
    const store = this.#store;
    if (!store) return;
    if (this.#fsyncing) {
      await this.#fsyncing;
      if (!this.#fsyncTimer && this.#store && !this.#stopped) this.#fsyncTimer = setTimeout(() => void this.#syncWal(), 0);
      return;
    }
    const t0 = performance.now();
    this.#fsyncing = store.syncWal().then(
      () => this.#opts.metrics?.histogram("cityedge_outbox_fsync_seconds").observe((performance.now() - t0) / 1000),
      (err: unknown) => this.#log.error({ err }, "outbox: background fsync of the WAL failed; the next commit retries"),
    );
    try {
      await this.#fsyncing;
    } finally {
      this.#fsyncing = undefined;
    }
  }

  #schedule(): void {
    this.#tick ??= setImmediate(() => {
      this.#tick = undefined;
      this.flush();
    });
  }

  #boundPending(): void {
    const over = this.#pending.length - MAX_PENDING;
    if (over > 0) {
      this.#pending.splice(0, over);
      this.#countDrops(over, "outbox cannot commit and its memory buffer is full; oldest messages dropped");
    }
  }

  #countDrops(n: number, why: string): void {
    this.#dropped += n;
    this.#droppedSinceLog += n;
    this.#opts.metrics?.counter("cityedge_outbox_dropped_total").inc(undefined, n);
    try {
      this.#store?.setCounter("dropped", this.#dropped);
    } catch (err) {
      this.#log.error({ err }, "outbox: could not persist the drop count");
    }
    const now = Date.now();
    if (now - this.#lastDropLog >= DROP_LOG_EVERY_MS) {
      this.#log.warn(
        { dropped: this.#droppedSinceLog, dropped_total: this.#dropped, max_rows: this.#opts.maxRows, max_bytes: this.#opts.maxBytes },
        why,
      );
      this.#lastDropLog = now;
      this.#droppedSinceLog = 0;
    }
  }

  #updateGauges(): void {
    const m = this.#opts.metrics;
    if (!m) return;
    const s = this.stats();
    m.gauge("cityedge_outbox_depth").set(s.depth);
    m.gauge("cityedge_outbox_bytes").set(s.bytes);
  }
}
