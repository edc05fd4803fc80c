/**
 * The outbox on a real full disk (a 2 MiB tmpfs the test fills): commits back off, memory stays
 * bounded, every drop consumes its seq, urgent messages go past it, nothing throws, and it
 * recovers when space returns. Mounting needs root (CI is root); elsewhere it skips and says so.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HistoryStore } from "../runtime/history/historyStore.js";
import { Outbox, type DirectMessage } from "../runtime/outbox/outbox.js";
import { mountTmpfs, type Tmpfs } from "./helpers/tmpfs.js";

let root: string;
let fs: Tmpfs | string;
const outboxes: Outbox[] = [];
const lines: Record<string, unknown>[] = [];
const log = pino({ level: "info" }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });

function make(over: { maxMemoryMessages?: number } = {}): Outbox {
  const o = new Outbox({
    file: path.join((fs as Tmpfs).dir, "outbox.sqlite"),
    deviceId: "dev-1",
    maxRows: 100_000,
    maxBytes: 1e9,
    sync: "normal",
    log,
    ...over,
  });
  outboxes.push(o);
  return o;
}

const seqOf = (payload: string) => (JSON.parse(payload) as { seq: number }).seq;
const tick = () => new Promise((r) => setImmediate(r));

describe("the outbox on a full disk (tmpfs)", () => {
  beforeAll(() => {
    root = mkdtempSync(path.join(os.tmpdir(), "cityedge-obfull-"));
    fs = mountTmpfs(path.join(root, "data"), "2m");
  });

  afterEach(async () => {
    for (const o of outboxes.splice(0)) await o.stop();
    if (typeof fs !== "string") {
      fs.free();
      for (const f of readdirSync(fs.dir)) rmSync(path.join(fs.dir, f), { force: true });
    }
    lines.length = 0;
  });

  afterAll(() => {
    if (typeof fs !== "string") fs.unmount();
    rmSync(root, { recursive: true, force: true });
  });

  it("backs off, bounds memory, drops the oldest with their seqs consumed, sends urgent messages directly, and recovers", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    const disk = fs;
    const o = make({ maxMemoryMessages: 100 });
    await o.start();
    const direct: DirectMessage[] = [];
    o.setDirectSender((m) => (direct.push(m), true));
    for (let i = 0; i < 5; i++) o.publish("t/a", { i });
    o.flush();
    // A backlog the uplink never took: the file cannot get rid of anything to make room.
    disk.fill();
    const pad = "p".repeat(2000);
    for (let i = 5; i < 400; i++) {
      o.publish("t/a", { i, pad });
      if (i % 10 === 0) await tick();
    }
    await tick();
    const h = o.health();
    expect(h).toMatchObject({ state: "degraded", disk_full: true, free_bytes: 0 });
    expect(h.error).toMatch(/^disk full \(0 B free on .*\): no commit since .*; \d+ messages wait in memory, \d+ dropped \(their seqs are skipped\)/);
    expect(o.stats().pending).toBeLessThanOrEqual(100);
    expect(o.stats().dropped).toBeGreaterThan(250);
    // Nothing throws on a full disk: not the connection number at CONNACK, not an ack.
    expect(() => o.setConnections(7)).not.toThrow();
    expect(() => o.ack(1)).not.toThrow();
    // Health and command answers go past the outbox, numbered on their own topics.
    o.publish("t/health", { ok: true }, { urgent: true });
    o.publish("t/health", { ok: true }, { urgent: true });
    expect(direct.map((m) => [m.topic, seqOf(m.payload)])).toEqual([
      ["t/health", 1],
      ["t/health", 2],
    ]);
    // One error line at the start, not one per publish.
    expect(lines.filter((l) => l.level === 50 && /outbox cannot commit/.test(String(l.msg)))).toHaveLength(1);
    disk.free();
    const deadline = Date.now() + 15_000;
    while (o.health().state !== "running" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(o.health()).toMatchObject({ state: "running", disk_full: false });
    expect(lines.some((l) => l.msg === "outbox commits again")).toBe(true);
    // What survived is committed with its seq; the seqs of the dropped ones are a gap.
    const seqs = o
      .read(0, 10_000)
      .filter((r) => r.topic === "t/a")
      .map((r) => seqOf(r.payload));
    const dropped = o.stats().dropped;
    expect(seqs.slice(0, 5)).toEqual([1, 2, 3, 4, 5]);
    expect(seqs[5]).toBe(6 + dropped);
    expect(seqs.at(-1)).toBe(400);
    expect(seqs.length + dropped).toBe(400);
    o.publish("t/health", { ok: true }, { urgent: true });
    o.flush();
    expect(
      o
        .read(0, 10_000)
        .filter((r) => r.topic === "t/health")
        .map((r) => seqOf(r.payload)),
    ).toEqual([3]);
  });

  it("keeps the drops, the connection number and the seqs across a restart made while the disk is full", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    const disk = fs;
    const a = make({ maxMemoryMessages: 100 });
    await a.start();
    a.setConnections(3);
    a.publish("t/a", { first: true });
    a.flush();
    disk.fill();
    for (let i = 0; i < 300; i++) a.publish("t/a", { i, pad: "p".repeat(500) });
    await tick();
    const consumed = a.seq("t/a");
    const droppedBefore = a.stats().dropped;
    await a.stop();
    outboxes.splice(outboxes.indexOf(a), 1);
    // Everything a could not commit was dropped at stop, each with its seq: 300 + the first.
    expect(consumed).toBeGreaterThan(1);
    expect(a.stats().dropped).toBe(300);
    const b = make();
    await b.start();
    expect(b.connections()).toBe(3);
    expect(b.stats().dropped).toBe(300);
    expect(b.epoch).toBe(a.epoch);
    disk.free();
    b.publish("t/a", { after: true });
    b.flush();
    const rows = b.read(0, 100).filter((r) => r.topic === "t/a");
    expect(rows.map((r) => seqOf(r.payload))).toEqual([1, 302]);
    expect(droppedBefore).toBeGreaterThan(0);
  });

  it("the history store keeps the newest 20,000 readings for its next write, in small transactions, and writes them when space returns", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    // A disk of its own with room for the 20,000 once the filler is gone.
    const disk = mountTmpfs(path.join(root, "history"), "16m") as Tmpfs;
    const h = new HistoryStore({
      file: path.join(disk.dir, "history.sqlite"),
      rawRetentionMs: 86_400_000,
      retentionMs: 86_400_000,
      log,
      flushIntervalMs: 3_600_000,
    });
    await h.start();
    try {
      h.track("m0/p", 60_000);
      let ts = Date.now();
      h.record("m0/p", ts++, 1, "good");
      h.flush();
      disk.fill();
      // One transaction of all of these outgrows SQLite's page cache; on a full disk that spun for minutes.
      for (let i = 0; i < 30_000; i++) h.record(`m${i % 6}/p`, ts++, i, "good");
      expect(() => h.flush()).toThrow(/database or disk is full/);
      expect(h.health()).toMatchObject({ queued: 20_000, not_recorded: 10_000 });
      disk.free();
      h.flush();
      expect(h.health()).toMatchObject({ queued: 0, written: 20_001, not_recorded: 10_000 });
      // The newest 20,000 were kept: the oldest 10,000 of the 30,000 are the ones not recorded.
      expect(h.raw("m0/p", 0, Infinity).map((r) => r.value)).toEqual([1, ...Array.from({ length: 3333 }, (_, k) => 10_002 + 6 * k)]);
    } finally {
      await h.stop();
      disk.unmount();
    }
  });
});
