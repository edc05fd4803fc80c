import { createHash, randomBytes } from "node:crypto";
import { closeSync, fdatasync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import path from "node:path";

/** Per topic: every seq up to `used` may have been given out; up to `committed` was in the outbox file. */
export interface TopicMarks {
  used: number;
  committed: number;
}

/** What the ledger holds: the sequence state that must outlive the outbox file. */
export interface LedgerState {
  /** Names one unbroken numbering of every topic; a new epoch means the numbering started over. */
  epoch: string;
  /** The last MQTT connection number handed out (the status topic's seq is built from it). */
  connections: number;
  /** Messages dropped since the numbering began (quota, full disk, refused): the outbox's drop count. */
  dropped: number;
  topics: Map<string, TopicMarks>;
}

export type LedgerOpen =
  | { kind: "ok"; state: LedgerState }
  | { kind: "missing" }
  /** The file exists but neither copy in it is whole; it was moved to `movedTo`. */
  | { kind: "damaged"; movedTo: string; reason: string };

const MAGIC = Buffer.from("CESL");
/** magic (4) | generation (8) | body length (4) | sha256 of the body (32) */
const HEADER = 48;
const MIN_SLOT = 64 * 1024;

/** A new epoch: when it began (readable in a dump) plus randomness (unique across devices and restarts). */
export function newEpoch(now = new Date()): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}-${randomBytes(4).toString("hex")}`;
}

/** The body's JSON, with the topics given as ready `"topic":[used,committed]` fragments. */
export function encodeBody(epoch: string, connections: number, dropped: number, topicFragments: Iterable<string>): string {
  return `{"v":1,"epoch":${JSON.stringify(epoch)},"connections":${connections},"dropped":${dropped},"topics":{${[...topicFragments].join(",")}}}`;
}

/** One topic's part of the body. */
export function topicFragment(topic: string, m: TopicMarks): string {
  return `${JSON.stringify(topic)}:[${m.used},${m.committed}]`;
}

function encode(state: LedgerState): string {
  return encodeBody(
    state.epoch,
    state.connections,
    state.dropped,
    [...state.topics].map(([t, m]) => topicFragment(t, m)),
  );
}

function decode(body: Buffer): LedgerState {
  const doc = JSON.parse(body.toString("utf8")) as { v?: unknown; epoch?: unknown; connections?: unknown; dropped?: unknown; topics?: unknown };
  if (
    doc.v !== 1 ||
    typeof doc.epoch !== "string" ||
    typeof doc.connections !== "number" ||
    typeof doc.dropped !== "number" ||
    doc.topics === null ||
    typeof doc.topics !== "object"
  )
    throw new Error("not a sequence ledger body");
  const topics = new Map<string, TopicMarks>();
  for (const [t, v] of Object.entries(doc.topics as Record<string, unknown>)) {
    if (!Array.isArray(v) || typeof v[0] !== "number" || typeof v[1] !== "number") throw new Error(`bad marks for topic "${t}"`);
    topics.set(t, { used: v[0], committed: v[1] });
  }
  return { epoch: doc.epoch, connections: doc.connections, dropped: doc.dropped, topics };
}

/**
 * The sequence ledger: per-topic high-water marks, the epoch and the connection number, in a
 * small file of its own beside the outbox, so that losing or damaging the outbox cannot restart
 * `seq`. It must also be writable when the disk is full: the file is allocated once, at its full
 * size, and every update overwrites one of its two copies in place (the older one), so it needs no
 * new blocks (true of ext4, xfs and tmpfs; copy-on-write file systems such as btrfs and zfs may
 * still refuse). A torn write spoils only the copy being written; the other one is still whole.
 */
export class SeqLedger {
  readonly file: string;
  #fd: number | undefined;
  #slot = MIN_SLOT;
  #generation = 0n;
  #dirtySync = false;
  writes = 0;

  constructor(file: string) {
    this.file = file;
  }

  /** Reads the ledger. A file with no whole copy is moved aside (with a timestamp) and reported. */
  open(): LedgerOpen {
    let fd: number;
    try {
      fd = openSync(this.file, "r+");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "missing" };
      throw err;
    }
    const size = fstatSync(fd).size;
    let best: { gen: bigint; state: LedgerState } | undefined;
    let reason = size < 2 * HEADER || size % 2 !== 0 ? `its size (${size} bytes) is not that of a ledger` : "neither copy in it is whole";
    if (reason === "neither copy in it is whole") {
      const slot = size / 2;
      for (const at of [0, slot]) {
        const head = Buffer.alloc(HEADER);
        if (readSync(fd, head, 0, HEADER, at) !== HEADER || !head.subarray(0, 4).equals(MAGIC)) continue;
        const gen = head.readBigUInt64BE(4);
        const len = head.readUInt32BE(12);
        if (len > slot - HEADER) continue;
        const body = Buffer.alloc(len);
        if (readSync(fd, body, 0, len, at + HEADER) !== len) continue;
        if (!createHash("sha256").update(body).digest().equals(head.subarray(16, 48))) continue;
        try {
          const state = decode(body);
          if (!best || gen > best.gen) best = { gen, state };
        } catch (err) {
          reason = `a copy's checksum holds but its content does not parse: ${(err as Error).message}`;
        }
      }
      this.#slot = slot;
    }
    if (!best) {
      closeSync(fd);
      const movedTo = `${this.file}.damaged-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      renameSync(this.file, movedTo);
      return { kind: "damaged", movedTo, reason };
    }
    this.#fd = fd;
    this.#generation = best.gen;
    return { kind: "ok", state: best.state };
  }

  /** Creates the file at its full size (needs free space once), holding `state`. */
  create(state: LedgerState): void {
    this.#createSized(encode(state), MIN_SLOT);
  }

  get isOpen(): boolean {
    return this.#fd !== undefined;
  }

  /**
   * Overwrites the older copy with `state`. Throws when the file cannot be written (no file, an
   * I/O error, or a state larger than its copies while the disk has no room to grow the file).
   */
  write(state: LedgerState): void {
    this.writeBody(encode(state));
  }

  /** As {@link write}, with the body already encoded (see {@link encodeBody}): the outbox writes it before every commit. */
  writeBody(json: string): void {
    if (this.#fd === undefined) throw new Error(`sequence ledger ${this.file} is not open`);
    const len = Buffer.byteLength(json);
    if (len > this.#slot - HEADER) {
      // Rare (many new topics): grow into a new file, then swap it in; needs free space.
      let slot = this.#slot;
      while (len > slot - HEADER) slot *= 2;
      this.#createSized(json, slot);
      return;
    }
    this.#generation++;
    const at = this.#generation % 2n === 0n ? 0 : this.#slot;
    const buf = Buffer.allocUnsafe(HEADER + len);
    buf.write(json, HEADER, "utf8");
    MAGIC.copy(buf, 0);
    buf.writeBigUInt64BE(this.#generation, 4);
    buf.writeUInt32BE(len, 12);
    createHash("sha256").update(buf.subarray(HEADER)).digest().copy(buf, 16);
    writeSync(this.#fd, buf, 0, buf.length, at);
    this.writes++;
    this.#dirtySync = true;
  }

  /** fdatasync off the event loop (with the outbox's background WAL sync); resolves when durable. */
  sync(): Promise<void> {
    const fd = this.#fd;
    if (fd === undefined || !this.#dirtySync) return Promise.resolve();
    this.#dirtySync = false;
    return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    if (this.#fd === undefined) return;
    try {
      fsyncSync(this.#fd);
    } finally {
      closeSync(this.#fd);
      this.#fd = undefined;
    }
  }

  #createSized(json: string, slot: number): void {
    const tmp = `${this.file}.${randomBytes(4).toString("hex")}.tmp`;
    const fd = openSync(tmp, "w+", 0o600);
    try {
      // Real zeros, not a sparse file: every block is allocated now, while there is room.
      const zeros = Buffer.alloc(64 * 1024);
      for (let at = 0; at < slot * 2; at += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, slot * 2 - at), at);
      const prevFd = this.#fd;
      const prevSlot = this.#slot;
      const prevGen = this.#generation;
      this.#fd = fd;
      this.#slot = slot;
      this.#generation = 0n;
      try {
        this.writeBody(json);
        fsyncSync(fd);
      } catch (err) {
        this.#fd = prevFd;
        this.#slot = prevSlot;
        this.#generation = prevGen;
        throw err;
      }
      renameSync(tmp, this.file);
      if (prevFd !== undefined) closeSync(prevFd);
      const dir = openSync(path.dirname(this.file), "r");
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    } catch (err) {
      if (this.#fd !== fd) closeSync(fd);
      rmSync(tmp, { force: true });
      throw err;
    }
  }
}
