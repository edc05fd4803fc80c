import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { isDamaged } from "../disk/storageErrors.js";

/** One message as it waits in the outbox: the payload already carries its envelope. */
export interface StoredMessage {
  id: number;
  topic: string;
  payload: string;
  retain: boolean;
}

/** A message about to be committed, with the per-topic seq it was given. */
export interface NewMessage {
  topic: string;
  /** The numbering the seq belongs to: the topic itself, unless the message says otherwise. */
  seqKey?: string;
  seq: number;
  payload: string;
  retain: boolean;
}

/**
 * "full": each commit is fsynced on the event loop before it returns (survives a power cut, blocks
 * the loop for the fsync). "normal": no fsync at commit (survives a process crash; a power cut may
 * roll back recent commits). "background": as "normal", plus the caller fsyncs the WAL off the
 * event loop with {@link OutboxStore.syncWal} (a power cut loses at most the time between two).
 */
export type SyncMode = "full" | "normal" | "background";

interface Row {
  id: number;
  topic: string;
  payload: string;
  retain: number;
}

const INSERT_CHUNK = 32;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL,
  payload TEXT NOT NULL,
  retain INTEGER NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seqs (topic TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/** The outbox file cannot be used; `damaged` when SQLite says it is not a sound database. */
export class OutboxFileError extends Error {
  readonly code: string;
  readonly damaged: boolean;

  constructor(message: string, code: string, damaged: boolean, cause?: unknown) {
    super(message, { cause });
    this.name = "OutboxFileError";
    this.code = code;
    this.damaged = damaged;
  }
}

/** Ids as ranges of consecutive ids, ascending. */
function idRanges(ids: number[]): [number, number][] {
  const sorted = [...ids].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const id of sorted) {
    const last = ranges.at(-1);
    if (last && id <= last[1] + 1) last[1] = Math.max(last[1], id);
    else ranges.push([id, id]);
  }
  return ranges;
}

/**
 * The outbox's SQLite file (better-sqlite3, WAL). Rows get ids that only ever rise
 * (AUTOINCREMENT), so "everything after id N" is a stable cursor for the publisher even when the
 * table empties. The per-topic seq is written in the same transaction as the messages that used
 * it, so after a crash seq continues exactly after the last committed message: no reuse, no gap.
 */
export class OutboxStore {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #insert: Database.Statement<[string, string, number, number]>;
  readonly #insertMany: Database.Statement<unknown[]>;
  readonly #setSeq: Database.Statement<[string, number]>;
  readonly #after: Database.Statement<[number, number], Row>;
  readonly #rangeTotals: Database.Statement<[number, number], { n: number; b: number }>;
  readonly #deleteRange: Database.Statement<[number, number]>;
  readonly #sync: SyncMode;
  readonly #oldestAfter: Database.Statement<[number, number], { id: number; bytes: number }>;
  readonly #deleteUpTo: Database.Statement<[number]>;
  readonly #setCounter: Database.Statement<[string, number]>;
  readonly #syncOff: Database.Statement<[]>;
  readonly #syncOn: Database.Statement<[]>;
  readonly #insertBatch: (msgs: NewMessage[], ranges: [number, number][], epoch: string | undefined) => StoredMessage[];
  readonly #setMeta: (key: string, value: string) => void;
  readonly #getMeta: (key: string) => string | undefined;
  readonly #deleteBatch: (ranges: [number, number][]) => void;
  #rows = 0;
  #bytes = 0;

  /**
   * Opens (or creates) the file and runs SQLite's quick_check on it, so that a damaged file is
   * found at open, not by the first commit that trips over it. Throws an OutboxFileError.
   */
  constructor(file: string, sync: SyncMode = "full") {
    this.file = file;
    this.#sync = sync;
    mkdirSync(path.dirname(file), { recursive: true });
    let db: Database.Database | undefined;
    try {
      db = new Database(file);
      db.pragma("journal_mode = WAL");
      const check = db.pragma("quick_check", { simple: true }) as string;
      if (check !== "ok") throw Object.assign(new Error(`quick_check: ${check}`), { code: "SQLITE_CORRUPT" });
      db.pragma(`synchronous = ${this.#pragmaSync()}`);
      db.pragma("cache_size = -16384");
      // A small WAL: it is checkpointed every 1 MiB and cut back to 4 MiB after a checkpoint, so
      // a data directory of a few MiB is not filled by the WAL alone (which then never reached
      // its checkpoint and kept the disk full after space came back).
      db.pragma("wal_autocheckpoint = 256");
      db.pragma(`journal_size_limit = ${4 * 1024 * 1024}`);
      db.exec(SCHEMA);
    } catch (err) {
      db?.close();
      const code = typeof (err as { code?: unknown }).code === "string" ? (err as { code: string }).code : "";
      const damaged = isDamaged(err);
      throw new OutboxFileError(
        `outbox "${file}": ${damaged ? "the file is damaged" : "cannot open the SQLite file"}: ${(err as Error).message}`,
        code,
        damaged,
        err,
      );
    }
    this.#db = db;
    this.#insert = this.#db.prepare("INSERT INTO messages (topic, payload, retain, bytes) VALUES (?, ?, ?, ?)");
    // One statement per INSERT_CHUNK rows: crossing into SQLite once per row is most of the cost.
    this.#insertMany = this.#db.prepare(
      `INSERT INTO messages (topic, payload, retain, bytes) VALUES ${Array(INSERT_CHUNK).fill("(?, ?, ?, ?)").join(", ")}`,
    );
    this.#setSeq = this.#db.prepare("INSERT INTO seqs (topic, seq) VALUES (?, ?) ON CONFLICT(topic) DO UPDATE SET seq = excluded.seq");
    this.#after = this.#db.prepare("SELECT id, topic, payload, retain FROM messages WHERE id > ? ORDER BY id LIMIT ?");
    this.#rangeTotals = this.#db.prepare("SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM messages WHERE id BETWEEN ? AND ?");
    this.#deleteRange = this.#db.prepare("DELETE FROM messages WHERE id BETWEEN ? AND ?");
    this.#oldestAfter = this.#db.prepare("SELECT id, bytes FROM messages WHERE id > ? ORDER BY id LIMIT ?");
    this.#deleteUpTo = this.#db.prepare("DELETE FROM messages WHERE id <= ?");
    this.#syncOff = this.#db.prepare("PRAGMA synchronous = OFF");
    this.#syncOn = this.#db.prepare(`PRAGMA synchronous = ${this.#pragmaSync()}`);
    this.#setCounter = this.#db.prepare("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value");
    const params: unknown[] = new Array<unknown>(INSERT_CHUNK * 4);
    const deleteRanges = (ranges: [number, number][]) => {
      for (const [from, to] of ranges) {
        const gone = this.#rangeTotals.get(from, to)!;
        this.#deleteRange.run(from, to);
        this.#rows -= gone.n;
        this.#bytes -= gone.b;
      }
    };
    // New messages and the deletes of acknowledged ones commit together: one commit per tick.
    const setMeta = this.#db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    this.#setMeta = (k, v) => setMeta.run(k, v);
    const getMeta = this.#db.prepare("SELECT value FROM meta WHERE key = ?");
    this.#getMeta = (k) => (getMeta.get(k) as { value: string } | undefined)?.value;
    this.#insertBatch = this.#db.transaction((msgs: NewMessage[], ranges: [number, number][], epoch: string | undefined) => {
      if (epoch !== undefined) setMeta.run("epoch", epoch);
      deleteRanges(ranges);
      const last = new Map<string, number>();
      const stored: StoredMessage[] = new Array<StoredMessage>(msgs.length);
      let i = 0;
      // AUTOINCREMENT ids of one statement are consecutive: the last one gives them all.
      for (; i + INSERT_CHUNK <= msgs.length; i += INSERT_CHUNK) {
        for (let k = 0; k < INSERT_CHUNK; k++) {
          const m = msgs[i + k]!;
          const bytes = Buffer.byteLength(m.payload);
          params[k * 4] = m.topic;
          params[k * 4 + 1] = m.payload;
          params[k * 4 + 2] = m.retain ? 1 : 0;
          params[k * 4 + 3] = bytes;
          this.#bytes += bytes;
        }
        const lastId = Number(this.#insertMany.run(params).lastInsertRowid);
        for (let k = 0; k < INSERT_CHUNK; k++) {
          const m = msgs[i + k]!;
          stored[i + k] = { id: lastId - INSERT_CHUNK + 1 + k, topic: m.topic, payload: m.payload, retain: m.retain };
        }
      }
      for (; i < msgs.length; i++) {
        const m = msgs[i]!;
        const bytes = Buffer.byteLength(m.payload);
        const id = Number(this.#insert.run(m.topic, m.payload, m.retain ? 1 : 0, bytes).lastInsertRowid);
        stored[i] = { id, topic: m.topic, payload: m.payload, retain: m.retain };
        this.#bytes += bytes;
      }
      for (const m of msgs) last.set(m.seqKey ?? m.topic, m.seq);
      for (const [topic, seq] of last) this.#setSeq.run(topic, seq);
      return stored;
    });
    this.#deleteBatch = this.#db.transaction(deleteRanges);
    const totals = this.#db.prepare("SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM messages").get() as { n: number; b: number };
    this.#rows = totals.n;
    this.#bytes = totals.b;
  }

  #pragmaSync(): "FULL" | "NORMAL" {
    return this.#sync === "full" ? "FULL" : "NORMAL";
  }

  /** WAL fsyncs done by {@link syncWal}. */
  walSyncs = 0;

  /**
   * Makes every commit so far durable without blocking the event loop: fdatasync of the WAL file
   * runs on libuv's thread pool. SQLite's WAL recovery keeps whole transactions only, so a power
   * cut during or after this loses at most the commits after it, never the file's consistency.
   */
  async syncWal(): Promise<void> {
    let fh;
    try {
      fh = await open(`${this.file}-wal`, "r");
    } catch (err) {
      // No WAL (nothing written yet, or the file was closed and checkpointed): nothing to sync.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    try {
      await fh.datasync();
      this.walSyncs++;
    } finally {
      await fh.close();
    }
  }

  /** The last seq committed for every topic. */
  seqs(): Map<string, number> {
    const rows = this.#db.prepare("SELECT topic, seq FROM seqs").all() as { topic: string; seq: number }[];
    return new Map(rows.map((r) => [r.topic, r.seq]));
  }

  counter(name: string): number {
    const row = this.#db.prepare("SELECT value FROM counters WHERE name = ?").get(name) as { value: number } | undefined;
    return row?.value ?? 0;
  }

  setCounter(name: string, value: number): void {
    this.#setCounter.run(name, value);
  }

  /**
   * Makes the next row ids start above `id`: a file that replaces a damaged one continues the
   * ids of the old one, so the publisher's read cursor stays valid and late acknowledgements of
   * old rows delete nothing new.
   */
  ensureIdsAbove(id: number): void {
    this.#db
      .prepare(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'messages', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages')",
      )
      .run();
    this.#db.prepare("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'messages'").run(id);
  }

  /**
   * Copies the WAL into the database file and makes the next commit start the WAL over from
   * its beginning. On a full disk that lets commits go on inside the space the WAL already has,
   * as long as the database file itself need not grow (its free pages suffice).
   */
  checkpointRestart(): void {
    this.#db.pragma("wal_checkpoint(RESTART)");
  }

  /** The sequence epoch recorded in this file, if any (files from before epochs have none). */
  epoch(): string | undefined {
    return this.#getMeta("epoch");
  }

  setEpoch(epoch: string): void {
    this.#setMeta("epoch", epoch);
  }

  /**
   * Commits the messages and their topics' seqs in one transaction, with the deletes of
   * `remove` (acknowledged ids, as in {@link remove}) and, when given, the epoch; returns the
   * messages with their ids. On failure nothing of any of it is committed.
   */
  append(msgs: NewMessage[], remove: number[] = [], epoch?: string): StoredMessage[] {
    if (msgs.length === 0) {
      if (epoch !== undefined) this.setEpoch(epoch);
      this.remove(remove);
      return [];
    }
    const before = { rows: this.#rows, bytes: this.#bytes };
    let stored: StoredMessage[];
    try {
      stored = this.#insertBatch(msgs, idRanges(remove), epoch);
    } catch (err) {
      this.#rows = before.rows;
      this.#bytes = before.bytes;
      throw err;
    }
    this.#rows += msgs.length;
    return stored;
  }

  /** Up to `limit` messages with ids above `afterId`, oldest first. */
  after(afterId: number, limit: number): StoredMessage[] {
    return this.#after.all(afterId, limit).map((r) => ({ id: r.id, topic: r.topic, payload: r.payload, retain: r.retain === 1 }));
  }

  /**
   * Removes acknowledged messages (ids already gone, dropped by the quota, are ignored).
   * Consecutive ids go in one range delete. A delete needs no fsync: if it is lost in a power
   * cut, the message is only sent again (same id), so deletes commit with synchronous=OFF; the
   * next insert's fsync covers them anyway, since the WAL is written in order.
   */
  remove(ids: number[]): void {
    if (ids.length === 0) return;
    const ranges = idRanges(ids);
    const before = { rows: this.#rows, bytes: this.#bytes };
    // With NORMAL (background durability) a WAL commit does not fsync anyway.
    const toggle = this.#sync === "full";
    if (toggle) this.#syncOff.run();
    try {
      this.#deleteBatch(ranges);
    } catch (err) {
      this.#rows = before.rows;
      this.#bytes = before.bytes;
      throw err;
    } finally {
      if (toggle) this.#syncOn.run();
    }
  }

  /**
   * Drops the oldest messages until the outbox holds at most `maxRows` rows and `maxBytes`
   * payload bytes; returns how many it dropped.
   */
  enforceQuota(maxRows: number, maxBytes: number): number {
    let dropped = 0;
    let freed = 0;
    let lastId = -1;
    const over = () => this.#rows - dropped > maxRows || this.#bytes - freed > maxBytes;
    while (over()) {
      const rows = this.#oldestAfter.all(lastId, 1000);
      if (rows.length === 0) break;
      for (const r of rows) {
        if (!over()) break;
        dropped++;
        freed += r.bytes;
        lastId = r.id;
      }
    }
    if (dropped === 0) return 0;
    this.#deleteUpTo.run(lastId);
    this.#rows -= dropped;
    this.#bytes -= freed;
    return dropped;
  }

  get rows(): number {
    return this.#rows;
  }

  get bytes(): number {
    return this.#bytes;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
