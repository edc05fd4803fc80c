import { ThrottledLog } from "../disk/throttledLog.js";
import { describeWriteError } from "../disk/storageErrors.js";
import type { Logger } from "../log/logger.js";
import type { OutboxStore } from "./outboxStore.js";
import { encodeBody, newEpoch, SeqLedger, topicFragment, type TopicMarks } from "./seqLedger.js";

const CONNECTIONS = "mqtt_connections";
const DROPPED = "dropped";
/** After a failed attempt to create the ledger file (no room), the next attempt waits this long. */
const CREATE_RETRY_MS = 10_000;

/**
 * The numbering of every topic: which seq comes next, in which epoch, and the MQTT connection
 * number. The outbox file holds it for what it committed; the ledger (a file of its own) holds
 * the high-water marks of everything handed out, committed or not (dropped on a full disk, sent
 * past a broken outbox), so a restart, a damaged outbox or a deleted one never reuses a seq.
 */
export class SequenceState {
  readonly #ledger: SeqLedger;
  readonly #log: Logger;
  readonly #errors: ThrottledLog;
  #epoch: string | undefined;
  /** Where the epoch came from; "provisional" while neither file could be read. */
  #epochFrom: "ledger" | "store" | "new" | "provisional" | undefined;
  /** The ledger's marks when it was opened (for the check against the outbox file). */
  #ledgerMarks: Map<string, TopicMarks> | undefined;
  /** Last seq consumed per key: committed, dropped or sent directly. */
  readonly #last = new Map<string, number>();
  /** Seqs about to be committed (written to the ledger first); at most one batch above #last. */
  readonly #reserved = new Map<string, number>();
  readonly #committed = new Map<string, number>();
  #handedAny = false;
  #connections = 0;
  #dropped = 0;
  #ledgerError: string | undefined;
  #nextCreateAt = 0;
  /** Each key's part of the ledger body, rebuilt only when its marks change: the ledger is written before every commit. */
  readonly #fragments = new Map<string, string>();
  readonly #dirty = new Set<string>();
  #lastWritten: string | undefined;

  constructor(file: string, log: Logger) {
    this.#ledger = new SeqLedger(file);
    this.#log = log;
    this.#errors = new ThrottledLog(log);
  }

  get file(): string {
    return this.#ledger.file;
  }

  /** Reads the ledger; returns notices for health (a damaged ledger moved aside). Never throws. */
  openLedger(): string[] {
    let opened;
    try {
      opened = this.#ledger.open();
    } catch (err) {
      this.#ledgerError = `cannot read the sequence ledger ${this.file}: ${(err as Error).message}`;
      this.#log.error({ err, file: this.file }, "cannot read the sequence ledger; seq continues from the outbox file alone");
      return [this.#ledgerError];
    }
    if (opened.kind === "missing") return [];
    if (opened.kind === "damaged") {
      const text = `the sequence ledger ${this.file} was damaged (${opened.reason}); moved to ${opened.movedTo}`;
      this.#log.error({ file: this.file, moved_to: opened.movedTo, reason: opened.reason }, "sequence ledger damaged; moved aside");
      return [text];
    }
    const s = opened.state;
    this.#epoch = s.epoch;
    this.#epochFrom = "ledger";
    this.#connections = s.connections;
    this.#dropped = s.dropped;
    this.#ledgerMarks = s.topics;
    for (const [k, m] of s.topics) {
      this.#last.set(k, Math.max(m.used, m.committed));
      this.#dirty.add(k);
    }
    return [];
  }

  /**
   * Takes in the state of an outbox file that was just opened. Returns the epoch to record in
   * the file (when it has none, or another one) and notices for health when the file holds fewer
   * committed messages than the ledger knows were committed (a damaged, truncated or replaced
   * file, or a damaged WAL, which SQLite drops without a word).
   */
  adopt(store: OutboxStore): { epochToWrite: string | undefined; notices: string[] } {
    const storeEpoch = store.epoch();
    const storeSeqs = store.seqs();
    if (this.#epochFrom === undefined || (this.#epochFrom === "provisional" && !this.#handedAny)) {
      if (storeEpoch !== undefined) {
        this.#epoch = storeEpoch;
        this.#epochFrom = "store";
      } else {
        this.#epoch = newEpoch();
        this.#epochFrom = "new";
        this.#log.info(
          { epoch: this.#epoch, topics: storeSeqs.size },
          storeSeqs.size > 0 ? "sequence epoch recorded; seq continues" : "new sequence epoch",
        );
      }
    }
    const notices: string[] = [];
    if (this.#ledgerMarks && (storeEpoch === undefined || storeEpoch === this.#epoch)) {
      const short: string[] = [];
      let missing = 0;
      for (const [k, m] of this.#ledgerMarks) {
        const have = storeSeqs.get(k) ?? 0;
        if (have < m.committed) {
          short.push(k);
          missing += m.committed - have;
        }
      }
      if (short.length > 0) {
        const text =
          `the outbox file ${store.file} does not hold the last ${missing} seqs committed to it (${short.length} topic${short.length === 1 ? "" : "s"}, e.g. ${short[0]}): ` +
          "it was replaced, truncated or damaged, or its WAL was; what it held undelivered is lost, and seq continues after the high-water marks, so subscribers see the loss as a gap";
        this.#log.error({ file: store.file, topics: short.slice(0, 10), missing }, "outbox file lost committed messages");
        notices.push(text);
      }
    }
    this.#ledgerMarks = undefined;
    for (const [k, seq] of storeSeqs) {
      this.#last.set(k, Math.max(this.#last.get(k) ?? 0, seq));
      this.#committed.set(k, seq);
    }
    for (const k of this.#last.keys()) this.#dirty.add(k);
    this.#connections = Math.max(this.#connections, store.counter(CONNECTIONS));
    this.#dropped = Math.max(this.#dropped, store.counter(DROPPED));
    this.persist();
    return { epochToWrite: storeEpoch === this.#epoch ? undefined : this.#epoch, notices };
  }

  /** The current epoch; a provisional one when neither file could be read (made on first use). */
  get epoch(): string {
    if (this.#epoch === undefined) {
      this.#epoch = newEpoch();
      this.#epochFrom = "provisional";
      this.#log.warn({ epoch: this.#epoch }, "neither the outbox nor the sequence ledger can be read: numbering in a new epoch");
    }
    return this.#epoch;
  }

  /** The last seq consumed on `key` (0 when none). */
  last(key: string): number {
    return this.#last.get(key) ?? 0;
  }

  /** Seqs up to `seq` on `key` are consumed (committed, dropped or sent directly). */
  consume(key: string, seq: number): void {
    if (seq > (this.#last.get(key) ?? 0)) {
      this.#last.set(key, seq);
      this.#dirty.add(key);
    }
    this.#handedAny = true;
  }

  /** Seqs about to be committed: recorded as used in the ledger before the commit. */
  reserve(seqs: ReadonlyMap<string, number>): void {
    for (const [k, s] of seqs) {
      if (s > (this.#reserved.get(k) ?? 0)) {
        this.#reserved.set(k, s);
        this.#dirty.add(k);
      }
    }
  }

  /** The commit of these seqs succeeded. */
  committed(seqs: ReadonlyMap<string, number>): void {
    for (const [k, s] of seqs) {
      this.#committed.set(k, s);
      this.#dirty.add(k);
      this.consume(k, s);
    }
  }

  get connections(): number {
    return this.#connections;
  }

  set connections(k: number) {
    this.#connections = k;
  }

  get dropped(): number {
    return this.#dropped;
  }

  addDropped(n: number): void {
    this.#dropped += n;
  }

  /** Health: why the ledger cannot be written, if it cannot. */
  get error(): string | undefined {
    return this.#ledgerError;
  }

  /**
   * Writes the ledger (creating it when missing and there is room). Never throws: a ledger that
   * cannot be written is reported in health and logged once per minute; the outbox file still
   * holds the numbering of what it committed.
   */
  persist(): void {
    const body = this.#body();
    if (body === this.#lastWritten && this.#ledger.isOpen) return;
    try {
      if (!this.#ledger.isOpen) {
        if (Date.now() < this.#nextCreateAt) return;
        try {
          this.#ledger.create({ epoch: this.epoch, connections: this.#connections, dropped: this.#dropped, topics: this.#marks() });
        } catch (err) {
          this.#nextCreateAt = Date.now() + CREATE_RETRY_MS;
          throw err;
        }
        this.#log.info({ file: this.file, epoch: this.epoch, topics: this.#last.size }, "sequence ledger created");
      } else {
        this.#ledger.writeBody(body);
      }
      this.#lastWritten = body;
      if (this.#ledgerError !== undefined) {
        this.#ledgerError = undefined;
        this.#errors.success({ file: this.file }, "sequence ledger written again");
      }
    } catch (err) {
      this.#ledgerError = `cannot write the sequence ledger ${this.file}: ${describeWriteError(err, this.file.replace(/\/[^/]*$/, "") || "/")}`;
      this.#errors.failure({ error: this.#ledgerError }, "cannot write the sequence ledger");
    }
  }

  /** fdatasync of the ledger, off the event loop. */
  sync(): Promise<void> {
    return this.#ledger.sync();
  }

  close(): void {
    this.persist();
    try {
      this.#ledger.close();
    } catch (err) {
      this.#log.error({ err, file: this.file }, "closing the sequence ledger failed");
    }
  }

  #markOf(k: string): TopicMarks {
    return { used: Math.max(this.#last.get(k) ?? 0, this.#reserved.get(k) ?? 0), committed: this.#committed.get(k) ?? 0 };
  }

  #marks(): Map<string, TopicMarks> {
    const topics = new Map<string, TopicMarks>();
    for (const k of new Set([...this.#last.keys(), ...this.#reserved.keys()])) topics.set(k, this.#markOf(k));
    return topics;
  }

  #body(): string {
    for (const k of this.#dirty) this.#fragments.set(k, topicFragment(k, this.#markOf(k)));
    this.#dirty.clear();
    return encodeBody(this.epoch, this.#connections, this.#dropped, this.#fragments.values());
  }
}
