import { randomUUID } from "node:crypto";
import path from "node:path";
import { OUTBOX_SCHEMA } from "../config/sections/mqtt.js";
import { ENVELOPE_KEYS } from "../contract/fields.js";
import { describeWriteError, freeBytes, isDamaged, isDiskFull } from "../disk/storageErrors.js";
import { ThrottledLog } from "../disk/throttledLog.js";
import type { Logger } from "../log/logger.js";
import type { DaemonBus } from "../events/events.js";
import type { Metrics } from "../metrics.js";
import { feedOutbox } from "../mqtt/outboxFeed.js";
import type { MessageSink, PublishOptions } from "../mqtt/sink.js";
import type { Topics } from "../mqtt/topics.js";
import { assertPublishable } from "../mqtt/topics.js";
import type { Part, PartHealth } from "../part.js";
import { moveAside, openOutboxFile } from "./outboxFiles.js";
import type { NewMessage, OutboxStore, StoredMessage, SyncMode } from "./outboxStore.js";
import { SequenceState } from "./sequenceState.js";

/** The config schema's defaults: an outbox built without a setting (tests, benches) behaves as the config would. */
const DEFAULTS = OUTBOX_SCHEMA.parse({});

export interface OutboxOptions {
  /** The SQLite file. */
  file: string;
  /** The sequence ledger; default: beside the file, `<name>.seqstate`. */
  ledgerFile?: string;
  deviceId: string;
  maxRows: number;
  maxBytes: number;
  /** Largest message accepted, envelope included (default: the config's `outbox.max_message_bytes` default). */
  maxMessageBytes?: number;
  /** Most messages kept in memory while nothing can be committed (default: `outbox.max_memory_messages`'s). */
  maxMemoryMessages?: number;
  sync: SyncMode;
  /** With sync "background": the WAL is fsynced this long after a commit at the latest (default: `outbox.fsync_interval_ms`'s). */
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
  /** Messages dropped (quota, full disk, refused by the broker) since the numbering began. */
  dropped: number;
  /** Messages accepted and not yet committed (normally 0 outside one event-loop tick). */
  pending: number;
  /** Committed messages the reader has not passed yet, kept in memory. */
  hot: number;
  /** Urgent messages (health, command answers) sent past the outbox while it could not commit. */
  direct: number;
}

/** A message with its envelope and seq, not in the outbox file (sent directly, or waiting to be). */
export interface DirectMessage {
  topic: string;
  payload: string;
  retain: boolean;
}

/** Sends one message to the broker now (QoS 1); false when there is no connection. */
export type DirectSender = (msg: DirectMessage) => boolean;

interface Pending {
  topic: string;
  seqKey: string;
  /** The body's JSON; the envelope is put in front of it when the seq is known. */
  bodyJson: string;
  id: string;
  ts: string;
  v: number;
  retain: boolean;
  urgent: boolean;
}

type Stamped = NewMessage & { seqKey: string; retain: boolean };

/** Why commits stopped, since when, and when to try again. */
interface Blocked {
  since: number;
  reason: string;
  diskFull: boolean;
  attempt: number;
  nextAt: number;
  freeAtFailure: number;
  droppedAtStart: number;
}

/** Commit at once when this many messages wait in one tick, so a burst cannot pile up in memory. */
const FLUSH_AT = 2000;
/** While the file cannot be written (full disk, cannot be opened) at most this much waits in memory. */
// Also the largest transaction a retry makes: well inside the 16 MiB page cache, since a
// transaction that outgrows the cache on a full disk makes SQLite retry its spill page after page.
const HELD_MAX_CHARS = 4 * 1024 * 1024;
/** Undelivered urgent messages kept for the next connection. */
const DIRECT_MAX = 256;
const RETRY_TICK_MS = 1000;
const RETRY_MAX_MS = 10_000;
/** Free space that must appear on a full disk before a commit is tried ahead of its backoff. */
const ROOM_MARGIN = 256 * 1024;
/** How long a damaged-file notice keeps the outbox "degraded" in health. */
const NOTICE_MS = 15 * 60_000;
const DROP_LOG_EVERY_MS = 10_000;
/** Most recently committed messages kept in memory, so the publisher need not read them back from SQLite. */
const HOT_MAX = 32_768;
const HOT_MAX_CHARS = 16 * 1024 * 1024;
/** Room taken by the envelope (v, id, device_id, ts, epoch, seq) in front of a body. */
const ENVELOPE_BYTES = 240;
const ACK_BATCH = 4096;
const ACK_FLUSH_MS = 50;

/** The outbox in health: what waits for the broker, what was dropped, what waits in memory for a commit. */
export type OutboxHealth = PartHealth & {
  depth: number;
  bytes: number;
  dropped: number;
  pending: number;
  direct: number;
  /** The sequence numbering's epoch (it changes when sequence state was lost). */
  epoch: string;
  disk_full: boolean;
  /** Free space of the data file system, when it can be read. */
  free_bytes?: number;
  /** Seconds since the oldest message waiting on disk was made (its envelope's ts); absent when none waits. */
  oldest_age_s?: number;
};

/**
 * The durable outbox: the MessageSink every pipeline publishes to. `publish()` stamps the
 * envelope and queues the message; all messages of one event-loop tick are committed to SQLite
 * in one transaction, together with the per-topic seq. Only committed messages are handed to
 * MQTT through `read()`, and they leave the outbox only when the broker acknowledged them.
 *
 * When the file cannot be written (a full disk, a file that cannot be opened) nothing crashes:
 * commits are retried with backoff (and as soon as space comes back), one line is logged per
 * minute, what is on disk is still delivered, at most `maxMemoryMessages` wait in memory and the
 * older ones are dropped with their seq consumed, so a subscriber sees the gap exactly there.
 * Urgent messages (health, command answers) go straight to the broker meanwhile.
 */
export class Outbox implements MessageSink, Part {
  readonly name = "outbox";
  readonly kind = "outbox";
  readonly #opts: OutboxOptions;
  readonly #log: Logger;
  readonly #dir: string;
  readonly #errors: ThrottledLog;
  readonly #fsyncErrors: ThrottledLog;
  #seq: SequenceState | undefined;
  #store: OutboxStore | undefined;
  #started = false;
  #stopped = false;
  #blocked: Blocked | undefined;
  #openError: string | undefined;
  #epochToWrite: string | undefined;
  #notice: { text: string; until: number } | undefined;
  /** Highest row id seen, so a replacement file continues above it and the reader's cursor stays valid. */
  #maxId = 0;
  /** The latest committed messages in id order, from `#hotHead` on; every row after `#hot[#hotHead].id - 1` is here. */
  #hot: StoredMessage[] = [];
  #hotHead = 0;
  #hotChars = 0;
  #pending: Pending[] = [];
  #pendingChars = 0;
  readonly #acked = new Set<number>();
  #direct: DirectSender | undefined;
  #directQueue: Stamped[] = [];
  #directSent = 0;
  #tick: NodeJS.Immediate | undefined;
  #retry: NodeJS.Timeout | undefined;
  #ackTimer: NodeJS.Timeout | undefined;
  #fsyncTimer: NodeJS.Timeout | undefined;
  #fsyncing: Promise<void> | undefined;
  #droppedSinceLog = 0;
  #lastDropLog = 0;
  readonly #listeners = new Set<() => void>();
  #unfeed: (() => void) | undefined;

  constructor(opts: OutboxOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#dir = path.dirname(opts.file);
    this.#errors = new ThrottledLog(opts.log);
    this.#fsyncErrors = new ThrottledLog(opts.log);
  }

  /** The sequence ledger's path. */
  get ledgerFile(): string {
    return this.#opts.ledgerFile ?? `${this.#opts.file.replace(/\.sqlite$/, "")}.seqstate`;
  }

  /**
   * Opens the ledger and the file. A file that cannot be opened does not fail the part: it is
   * reported in health and opened again with backoff, while urgent messages go out directly.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    // First, so messages emitted while the file cannot be opened wait in memory as publish() keeps them.
    const ev = this.#opts.events;
    if (ev && !this.#unfeed) this.#unfeed = feedOutbox(ev.bus, this, ev.topics);
    this.#started = true;
    const seq = new SequenceState(this.ledgerFile, this.#log);
    this.#seq = seq;
    const notices = seq.openLedger();
    if (notices.length > 0) this.#notice = { text: notices.join("; "), until: Date.now() + NOTICE_MS };
    this.#open();
    if (!this.#store) this.#scheduleRetry();
    this.#updateGauges();
    this.flush();
  }

  async stop(): Promise<void> {
    if (this.#store) this.#flush(true);
    const lost = this.#pending.length + this.#directQueue.length;
    if (this.#pending.length > 0)
      this.#dropPending(this.#pending.length, "outbox stopped with messages it could not commit; dropped (their seqs are skipped)");
    if (this.#directQueue.length > 0) {
      this.#seq?.addDropped(this.#directQueue.length);
      this.#directQueue = [];
    }
    if (lost > 0)
      this.#log.error({ lost, error: this.#blocked?.reason ?? this.#openError }, "outbox stopped with messages it could not commit or send");
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
    this.#seq?.close();
    this.#store?.close();
    this.#store = undefined;
    this.rewind();
    this.#unfeed?.();
    this.#unfeed = undefined;
  }

  publish(topic: string, body: Record<string, unknown>, opts?: PublishOptions): void {
    assertPublishable(topic);
    if (body === null || typeof body !== "object" || Array.isArray(body)) throw new Error(`publish to "${topic}": body must be a JSON object`);
    for (const k of ENVELOPE_KEYS) {
      if (Object.hasOwn(body, k))
        throw new Error(`publish to "${topic}": body must not set envelope key "${k}" (the outbox sets ${ENVELOPE_KEYS.join(", ")})`);
    }
    const bodyJson = JSON.stringify(body);
    const max = this.#opts.maxMessageBytes ?? DEFAULTS.max_message_bytes;
    // Length in UTF-16 units is a lower bound of the UTF-8 size: only measure when it may be close.
    if (bodyJson.length + ENVELOPE_BYTES > max / 4) {
      const size = Buffer.byteLength(bodyJson) + ENVELOPE_BYTES;
      if (size > max) throw new Error(`publish to "${topic}": message is ${size} bytes, more than outbox.max_message_bytes (${max})`);
    }
    if (this.#stopped) {
      // The numbering is closed with the ledger; a part that still publishes is stopping out of order.
      this.#log.error({ topic }, "message published after the outbox stopped; dropped");
      this.#countDrops(1, "published after the outbox stopped");
      return;
    }
    const p: Pending = {
      topic,
      seqKey: opts?.seqKey ?? topic,
      bodyJson,
      id: randomUUID(),
      ts: new Date().toISOString(),
      v: opts?.v ?? 1,
      retain: opts?.retain ?? false,
      urgent: opts?.urgent === true,
    };
    if (p.urgent && this.#started && (this.#blocked || !this.#store)) {
      this.#sendDirect(p);
      return;
    }
    this.#pending.push(p);
    this.#pendingChars += bodyJson.length;
    if (!this.#store || this.#blocked) this.#holdBound();
    else if (this.#pending.length >= FLUSH_AT) this.flush();
    else this.#schedule();
  }

  /** Commits every queued message and deletes every acknowledged one, now (unless commits are backing off). */
  flush(): void {
    this.#flush(false);
  }

  /** Calls `fn` after each commit of new messages; returns the unsubscribe function. */
  onCommit(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Where urgent messages go while the outbox cannot commit (the publisher's connection). Those
   * that find no connection wait (at most DIRECT_MAX) for {@link drainDirect} or the next commit.
   */
  setDirectSender(send: DirectSender | undefined): void {
    this.#direct = send;
  }

  /** A connection is up: sends the urgent messages that were waiting for one. */
  drainDirect(): void {
    const send = this.#direct;
    if (!send) return;
    while (this.#directQueue.length > 0) {
      const m = this.#directQueue[0]!;
      if (!send({ topic: m.topic, payload: m.payload, retain: m.retain })) return;
      this.#directQueue.shift();
      this.#directSent++;
    }
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
    const store = this.#store;
    if (!store) return [];
    try {
      return this.#readStore(store, afterId, limit);
    } catch (err) {
      // The reader runs in the MQTT client's events: a read error must not escape there.
      if (isDamaged(err)) this.#replaceDamaged(err);
      else this.#errors.failure({ error: (err as Error).message, file: this.#opts.file }, "outbox: cannot read the file; retrying on the next read");
      return [];
    }
  }

  #readStore(store: OutboxStore, afterId: number, limit: number): StoredMessage[] {
    if (this.#acked.size === 0) return store.after(afterId, limit);
    // Acknowledged rows whose delete is still waiting (a full disk) are not sent again.
    const out: StoredMessage[] = [];
    let cursor = afterId;
    while (out.length < limit) {
      const rows = store.after(cursor, limit - out.length + 256);
      if (rows.length === 0) break;
      for (const r of rows) {
        cursor = r.id;
        if (this.#acked.has(r.id)) continue;
        out.push(r);
        if (out.length === limit) break;
      }
    }
    return out;
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
    this.#acked.add(id);
    if (this.#blocked) return;
    // Deletes are batched over a short time: a lost delete only means a duplicate, and fewer,
    // larger delete transactions cost much less than one per tick at full speed.
    if (this.#acked.size >= ACK_BATCH) this.#schedule();
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

  /** The last MQTT connection number handed out (persisted in the ledger, so it survives a lost outbox). */
  connections(): number {
    return this.#seq?.connections ?? 0;
  }

  /** Records connection number `k`. Never throws: a full disk only delays making it durable. */
  setConnections(k: number): void {
    const seq = this.#seq;
    if (!seq) return;
    seq.connections = k;
    seq.persist();
    try {
      this.#store?.setCounter("mqtt_connections", k);
    } catch (err) {
      this.#log.debug({ err }, "connection number not written to the outbox file (the ledger holds it)");
    }
  }

  /** The epoch the next messages are numbered in. */
  get epoch(): string {
    return this.#seq?.epoch ?? "";
  }

  /** Background fsyncs of the WAL done since start (sync "background"). */
  get walSyncs(): number {
    return this.#store?.walSyncs ?? 0;
  }

  /** The last seq handed out on a topic: committed, dropped or sent directly (0 when none). */
  seq(topic: string): number {
    return this.#seq?.last(topic) ?? 0;
  }

  stats(): OutboxStats {
    return {
      depth: this.#store?.rows ?? 0,
      bytes: this.#store?.bytes ?? 0,
      dropped: this.#seq?.dropped ?? 0,
      pending: this.#pending.length,
      hot: this.#hot.length - this.#hotHead,
      direct: this.#directSent,
    };
  }

  health(): OutboxHealth {
    const s = this.stats();
    const free = freeBytes(this.#dir);
    const problems: string[] = [];
    const b = this.#blocked;
    if (b) {
      problems.push(
        `${b.reason}: no commit since ${new Date(b.since).toISOString()}; ${s.pending} messages wait in memory, ` +
          `${(this.#seq?.dropped ?? 0) - b.droppedAtStart} dropped (their seqs are skipped); what is on disk is still delivered`,
      );
    }
    if (!this.#store && this.#openError) problems.push(this.#openError);
    if (this.#notice && Date.now() < this.#notice.until) problems.push(this.#notice.text);
    if (this.#seq?.error) problems.push(this.#seq.error);
    const state = this.#stopped ? "stopped" : !this.#started ? "starting" : problems.length > 0 ? "degraded" : "running";
    return {
      state,
      ...(problems.length > 0 ? { error: problems.join("; ") } : {}),
      depth: s.depth,
      bytes: s.bytes,
      dropped: s.dropped,
      pending: s.pending,
      direct: s.direct,
      epoch: this.epoch,
      disk_full: b?.diskFull === true || (!this.#store && /disk full/.test(this.#openError ?? "")),
      ...(free !== undefined ? { free_bytes: free } : {}),
      ...this.#oldestAge(),
    };
  }

  /** How long the oldest message on disk has waited: read from its envelope (one indexed row), for health. */
  #oldestAge(): { oldest_age_s?: number } {
    try {
      const oldest = this.#store?.after(0, 1)[0];
      if (!oldest) return {};
      const ts = Date.parse((JSON.parse(oldest.payload) as { ts?: unknown }).ts as string);
      return Number.isNaN(ts) ? {} : { oldest_age_s: Math.max(0, Math.round((Date.now() - ts) / 100) / 10) };
    } catch (err) {
      // Health must answer even when the file cannot be read (that error is reported above).
      this.#log.debug({ err }, "outbox: the oldest message's age could not be read");
      return {};
    }
  }

  #open(): void {
    const seq = this.#seq!;
    let opened;
    try {
      opened = openOutboxFile(this.#opts.file, this.#opts.sync, this.#log);
    } catch (err) {
      const why = `cannot open the outbox file ${this.#opts.file}: ${describeWriteError((err as Error).cause ?? err, this.#dir)}`;
      if (this.#openError === undefined)
        this.#log.error({ error: why }, "outbox file cannot be opened; retrying, urgent messages go directly to the broker");
      this.#openError = why;
      this.#blocked ??= this.#newBlocked(why, isDiskFull((err as Error).cause ?? err));
      return;
    }
    const store = opened.store;
    if (this.#maxId > 0) {
      try {
        store.ensureIdsAbove(this.#maxId);
      } catch (err) {
        // Ids starting over would put new rows behind the reader's cursor: not usable yet.
        store.close();
        this.#openError = `cannot prepare the new outbox file ${this.#opts.file}: ${describeWriteError(err, this.#dir)}`;
        this.#blocked ??= this.#newBlocked(this.#openError, isDiskFull(err));
        return;
      }
    }
    const { epochToWrite, notices } = seq.adopt(store);
    if (opened.notice) notices.unshift(opened.notice);
    if (notices.length > 0) this.#notice = { text: notices.join("; "), until: Date.now() + NOTICE_MS };
    this.#epochToWrite = epochToWrite;
    this.#store = store;
    if (this.#openError !== undefined) this.#log.info({ file: this.#opts.file }, "outbox file open again");
    this.#openError = undefined;
    this.#blocked = undefined;
    this.#log.info(
      { file: this.#opts.file, depth: store.rows, bytes: store.bytes, dropped: seq.dropped, epoch: seq.epoch, ledger: seq.file },
      "outbox open",
    );
  }

  #flush(force: boolean): void {
    if (this.#tick) clearImmediate(this.#tick);
    this.#tick = undefined;
    if (this.#ackTimer) clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const store = this.#store;
    const seq = this.#seq;
    if (!store || !seq || (this.#blocked && !force)) {
      this.#holdBound();
      return;
    }
    const carried = this.#directQueue;
    if (this.#pending.length === 0 && carried.length === 0) {
      if (this.#acked.size === 0 && this.#epochToWrite === undefined) return;
      try {
        this.#append(store, [], this.#epochToWrite);
      } catch (err) {
        this.#failed(err);
        return;
      }
      this.#acked.clear();
      this.#epochToWrite = undefined;
      this.#recovered();
      this.#updateGauges();
      return;
    }
    const planned = new Map<string, number>();
    const epochJson = JSON.stringify(seq.epoch);
    const deviceJson = JSON.stringify(this.#opts.deviceId);
    const batch: Stamped[] = [...carried];
    for (const p of this.#pending) {
      const n = (planned.get(p.seqKey) ?? seq.last(p.seqKey)) + 1;
      planned.set(p.seqKey, n);
      batch.push(this.#stamp(p, n, deviceJson, epochJson));
    }
    // The ledger learns of these seqs before the commit: if the process dies in between, they
    // count as used, and a lost commit shows as a gap, never as a reused seq.
    seq.reserve(planned);
    seq.persist();
    let stored: StoredMessage[];
    try {
      // The deletes of acknowledged messages ride in the same commit; if it fails they wait for the retry.
      stored = this.#append(store, batch, this.#epochToWrite);
    } catch (err) {
      this.#failed(err);
      return;
    }
    for (const m of carried) if (m.seq > (planned.get(m.seqKey) ?? 0)) planned.set(m.seqKey, m.seq);
    seq.committed(planned);
    this.#epochToWrite = undefined;
    this.#acked.clear();
    this.#pending = [];
    this.#pendingChars = 0;
    this.#directQueue = [];
    this.#recovered();
    this.#maxId = Math.max(this.#maxId, stored.at(-1)?.id ?? 0);
    this.#opts.metrics?.counter("cityedge_outbox_committed_total").inc(undefined, batch.length);
    this.#keepHot(stored);
    if (this.#opts.sync === "background")
      this.#fsyncTimer ??= setTimeout(() => void this.#syncWal(), this.#opts.fsyncIntervalMs ?? DEFAULTS.fsync_interval_ms);
    let dropped = 0;
    try {
      dropped = store.enforceQuota(this.#opts.maxRows, this.#opts.maxBytes);
    } catch (err) {
      this.#failed(err);
    }
    if (dropped > 0) {
      this.rewind();
      this.#countDrops(dropped, "outbox quota exceeded; oldest messages dropped");
    }
    this.#updateGauges();
    for (const fn of this.#listeners) fn();
  }

  /**
   * One commit. On a full disk, first a checkpoint that restarts the WAL, then once more: the WAL
   * keeps its size after a checkpoint, so commits can go on in the room it already holds.
   */
  #append(store: OutboxStore, batch: Stamped[], epoch: string | undefined): StoredMessage[] {
    try {
      return store.append(batch, [...this.#acked], epoch);
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      try {
        store.checkpointRestart();
      } catch (cpErr) {
        this.#log.debug({ err: cpErr }, "outbox: checkpoint on a full disk failed");
        throw err;
      }
      return store.append(batch, [...this.#acked], epoch);
    }
  }

  #stamp(p: Pending, seq: number, deviceJson: string, epochJson: string): Stamped {
    const head = `{"v":${p.v},"id":"${p.id}","device_id":${deviceJson},"ts":"${p.ts}","epoch":${epochJson},"seq":${seq}`;
    return {
      topic: p.topic,
      seqKey: p.seqKey,
      seq,
      retain: p.retain,
      payload: p.bodyJson === "{}" ? `${head}}` : `${head},${p.bodyJson.slice(1)}`,
    };
  }

  /** A commit or delete failed: a damaged file is replaced; anything else backs off. Never throws. */
  #failed(err: unknown): void {
    if (isDamaged(err)) {
      this.#replaceDamaged(err);
      return;
    }
    const reason = describeWriteError(err, this.#dir);
    const now = Date.now();
    const b = this.#blocked;
    if (!b) {
      this.#blocked = this.#newBlocked(reason, isDiskFull(err));
      this.#opts.metrics?.gauge("cityedge_outbox_blocked").set(1);
      // What waits in memory may wait a long time: urgent messages go to the broker now, in order.
      const urgent = this.#pending.filter((p) => p.urgent);
      if (urgent.length > 0) {
        this.#pending = this.#pending.filter((p) => !p.urgent);
        this.#pendingChars = this.#pending.reduce((n, p) => n + p.bodyJson.length, 0);
        for (const p of urgent) this.#sendDirect(p);
      }
    } else {
      b.attempt++;
      b.nextAt = now + Math.min(RETRY_MAX_MS, RETRY_TICK_MS * 2 ** b.attempt);
      b.reason = reason;
      b.freeAtFailure = freeBytes(this.#dir) ?? 0;
    }
    this.#errors.failure(
      { error: reason, file: this.#opts.file, waiting: this.#pending.length, dropped: (this.#seq?.dropped ?? 0) - this.#blocked!.droppedAtStart },
      `outbox cannot commit; retrying with backoff: at most ${this.#opts.maxMemoryMessages ?? DEFAULTS.max_memory_messages} messages wait in memory (older ones are dropped, their seqs skipped), urgent ones go directly to the broker, what is on disk is still delivered`,
    );
    this.#holdBound();
    this.#scheduleRetry();
  }

  #newBlocked(reason: string, diskFull: boolean): Blocked {
    const now = Date.now();
    return {
      since: now,
      reason,
      diskFull,
      attempt: 0,
      nextAt: now + RETRY_TICK_MS,
      freeAtFailure: freeBytes(this.#dir) ?? 0,
      droppedAtStart: this.#seq?.dropped ?? 0,
    };
  }

  #recovered(): void {
    const b = this.#blocked;
    if (!b) return;
    this.#blocked = undefined;
    this.#opts.metrics?.gauge("cityedge_outbox_blocked").set(0);
    this.#errors.success({ file: this.#opts.file, dropped_while_blocked: (this.#seq?.dropped ?? 0) - b.droppedAtStart }, "outbox commits again");
  }

  /** A damaged file found while running: moved aside, a new one started; its unsent rows are lost (a gap). */
  #replaceDamaged(err: unknown): void {
    const old = this.#store;
    this.#store = undefined;
    try {
      old?.close();
    } catch (closeErr) {
      this.#log.warn({ err: closeErr }, "closing the damaged outbox file failed");
    }
    let movedTo = "";
    try {
      movedTo = moveAside(this.#opts.file);
    } catch (moveErr) {
      this.#log.error({ err: moveErr }, "cannot move the damaged outbox file aside");
    }
    const reason = (err as Error).message;
    this.#log.error({ file: this.#opts.file, moved_to: movedTo, reason }, "outbox file damaged while running; moved aside, starting a new one");
    this.#acked.clear();
    this.#open();
    const text = `the outbox file was damaged while running (${reason}); moved to ${movedTo || "nowhere (the move failed)"} and a new one started: its unsent messages are lost, and the gap in seq shows where`;
    this.#notice = { text: this.#notice ? `${text}; ${this.#notice.text}` : text, until: Date.now() + NOTICE_MS };
    if (this.#store) this.#schedule();
    else this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#retry || this.#stopped) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#retryTick();
    }, RETRY_TICK_MS);
  }

  /** Once a second while blocked: try again when the backoff has passed, or at once when space came back. */
  #retryTick(): void {
    if (this.#stopped) return;
    const b = this.#blocked;
    if (!b) return;
    const now = Date.now();
    const free = freeBytes(this.#dir) ?? 0;
    const due = now >= b.nextAt || (b.diskFull && free > b.freeAtFailure + ROOM_MARGIN);
    if (due) {
      if (!this.#store) {
        b.attempt++;
        b.nextAt = now + Math.min(RETRY_MAX_MS, RETRY_TICK_MS * 2 ** b.attempt);
        b.freeAtFailure = free;
        this.#open();
        if (this.#store) {
          this.#errors.success({ file: this.#opts.file }, "outbox file open again");
          this.#flush(true);
        }
      } else {
        this.#flush(true);
      }
    }
    if (this.#blocked) this.#scheduleRetry();
  }

  /** An urgent message while the outbox cannot commit: numbered now, sent now or at the next connection. */
  #sendDirect(p: Pending): void {
    const seq = this.#seq!;
    const n = seq.last(p.seqKey) + 1;
    seq.consume(p.seqKey, n);
    seq.persist();
    const m = this.#stamp(p, n, JSON.stringify(this.#opts.deviceId), JSON.stringify(seq.epoch));
    if (this.#directQueue.length === 0 && this.#direct?.({ topic: m.topic, payload: m.payload, retain: m.retain })) {
      this.#directSent++;
      return;
    }
    this.#directQueue.push(m);
    if (this.#directQueue.length > DIRECT_MAX) {
      this.#directQueue.shift();
      this.#countDrops(1, "urgent message not sent: no connection and no room; dropped (its seq is skipped)");
    }
  }

  /** While nothing can be committed, memory is bounded: the oldest waiting messages go, their seqs consumed. */
  #holdBound(): void {
    const HELD_MAX = this.#opts.maxMemoryMessages ?? DEFAULTS.max_memory_messages;
    if (this.#pending.length <= HELD_MAX && this.#pendingChars <= HELD_MAX_CHARS) return;
    // Down to 90% in one go, so a steady stream costs one drop (and one ledger write) per few hundred messages.
    let k = 0;
    let chars = this.#pendingChars;
    while (k < this.#pending.length && (this.#pending.length - k > HELD_MAX * 0.9 || chars > HELD_MAX_CHARS * 0.9)) {
      chars -= this.#pending[k]!.bodyJson.length;
      k++;
    }
    this.#dropPending(k, "outbox cannot commit and its memory buffer is full; oldest messages dropped (their seqs are skipped)");
  }

  /** Drops the `k` oldest waiting messages; each still consumes its seq, so the loss is a visible gap. */
  #dropPending(k: number, why: string): void {
    const dropped = this.#pending.splice(0, k);
    for (const p of dropped) this.#pendingChars -= p.bodyJson.length;
    const seq = this.#seq;
    if (seq && this.#started) {
      for (const p of dropped) seq.consume(p.seqKey, seq.last(p.seqKey) + 1);
    }
    this.#countDrops(dropped.length, why);
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
    const ledger = this.#seq?.sync() ?? Promise.resolve();
    this.#fsyncing = Promise.all([store.syncWal(), ledger]).then(
      () => {
        this.#fsyncErrors.success({}, "outbox: background fsync works again");
        this.#opts.metrics?.histogram("cityedge_outbox_fsync_seconds").observe((performance.now() - t0) / 1000);
      },
      (err: unknown) => this.#fsyncErrors.failure({ error: (err as Error).message }, "outbox: background fsync failed; the next commit retries"),
    );
    try {
      await this.#fsyncing;
    } finally {
      this.#fsyncing = undefined;
    }
  }

  #schedule(): void {
    if (this.#blocked) return;
    this.#tick ??= setImmediate(() => {
      this.#tick = undefined;
      this.flush();
    });
  }

  #countDrops(n: number, why: string): void {
    this.#seq?.addDropped(n);
    this.#seq?.persist();
    this.#droppedSinceLog += n;
    this.#opts.metrics?.counter("cityedge_outbox_dropped_total").inc(undefined, n);
    try {
      if (!this.#blocked) this.#store?.setCounter("dropped", this.#seq?.dropped ?? 0);
    } catch (err) {
      this.#log.debug({ err }, "outbox: drop count not written to the file (the ledger holds it)");
    }
    const now = Date.now();
    if (now - this.#lastDropLog >= DROP_LOG_EVERY_MS) {
      this.#log.warn(
        { dropped: this.#droppedSinceLog, dropped_total: this.#seq?.dropped ?? 0, max_rows: this.#opts.maxRows, max_bytes: this.#opts.maxBytes },
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
