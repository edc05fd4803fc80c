import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Metrics } from "../runtime/metrics.js";
import { Outbox } from "../runtime/outbox/outbox.js";
import { OutboxStore } from "../runtime/outbox/outboxStore.js";

const log = pino({ level: "silent" });
const dirs: string[] = [];
const outboxes: Outbox[] = [];

function tempFile(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-outbox-"));
  dirs.push(dir);
  return path.join(dir, "outbox.sqlite");
}

function make(file: string, over: Partial<{ maxRows: number; maxBytes: number; metrics: Metrics }> = {}): Outbox {
  const o = new Outbox({
    file,
    deviceId: "dev-1",
    maxRows: over.maxRows ?? 1000,
    maxBytes: over.maxBytes ?? 1e9,
    sync: "normal",
    log,
    metrics: over.metrics,
  });
  outboxes.push(o);
  return o;
}

afterEach(async () => {
  for (const o of outboxes.splice(0)) await o.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("Outbox", () => {
  it("stamps the envelope and commits every message of a tick in order, with seq per topic", async () => {
    const o = make(tempFile());
    await o.start();
    o.publish("cityedge/dev-1/a", { x: 1 });
    o.publish("cityedge/dev-1/b", {});
    o.publish("cityedge/dev-1/a", { x: 2 }, { v: 3 });
    expect(o.stats().pending).toBe(3);
    await new Promise((r) => setImmediate(r));
    expect(o.stats()).toMatchObject({ pending: 0, depth: 3 });
    const rows = o.read(0, 10);
    const msgs = rows.map((r) => JSON.parse(r.payload) as Record<string, unknown>);
    expect(rows.map((r) => r.topic)).toEqual(["cityedge/dev-1/a", "cityedge/dev-1/b", "cityedge/dev-1/a"]);
    expect(msgs.map((m) => m.seq)).toEqual([1, 1, 2]);
    expect(msgs[0]).toMatchObject({ v: 1, device_id: "dev-1", seq: 1, x: 1 });
    expect(msgs[2]).toMatchObject({ v: 3, x: 2 });
    expect(Object.keys(msgs[1]!)).toEqual(["v", "id", "device_id", "ts", "epoch", "seq"]);
    expect(msgs[0]!.epoch).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    expect(new Set(msgs.map((m) => m.epoch)).size).toBe(1);
    expect(msgs[0]!.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(new Set(msgs.map((m) => m.id)).size).toBe(3);
  });

  it("in background mode fsyncs the WAL off the event loop after commits, once per interval, and not when idle", async () => {
    const file = tempFile();
    const o = new Outbox({ file, deviceId: "dev-1", maxRows: 1000, maxBytes: 1e9, sync: "background", fsyncIntervalMs: 40, log });
    outboxes.push(o);
    await o.start();
    const idle = o.walSyncs;
    await new Promise((r) => setTimeout(r, 120));
    expect(o.walSyncs).toBe(idle);
    // 20 commits (one per tick) share the fsyncs of the intervals they span (one, on a quiet machine).
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) {
      o.publish("cityedge/dev-1/a", { i });
      await new Promise((r) => setImmediate(r));
    }
    const spanMs = performance.now() - t0;
    expect(o.stats()).toMatchObject({ pending: 0, depth: 20 });
    await new Promise((r) => setTimeout(r, 150));
    const synced = o.walSyncs - idle;
    expect(synced).toBeGreaterThanOrEqual(1);
    expect(synced).toBeLessThanOrEqual(Math.ceil(spanMs / 40) + 1);
    // Idle again: no more fsyncs.
    await new Promise((r) => setTimeout(r, 120));
    expect(o.walSyncs - idle).toBe(synced);
    // A commit right before stop is fsynced by stop itself.
    o.publish("cityedge/dev-1/a", { last: true });
    await o.stop();
    const reopened = new OutboxStore(file);
    expect(reopened.after(0, 100).length).toBe(21);
    reopened.close();
  });

  it("continues seq after a reopen and after acknowledged messages are deleted", async () => {
    const file = tempFile();
    const a = make(file);
    await a.start();
    for (let i = 0; i < 5; i++) a.publish("t/x", { i });
    a.flush();
    for (const r of a.read(0, 100)) a.ack(r.id);
    await a.stop();
    const b = make(file);
    await b.start();
    expect(b.stats().depth).toBe(0);
    b.publish("t/x", { i: 5 });
    b.flush();
    const [row] = b.read(0, 10);
    expect(JSON.parse(row!.payload)).toMatchObject({ seq: 6, i: 5 });
  });

  it("says in health how long the oldest waiting message has waited, and nothing once all are acknowledged", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const o = make(tempFile());
      await o.start();
      expect(o.health().oldest_age_s).toBeUndefined();
      o.publish("t/x", { i: 0 });
      o.flush();
      vi.setSystemTime(Date.now() + 90_000);
      o.publish("t/x", { i: 1 });
      o.flush();
      // The first one has waited 90 s; the second is newer.
      expect(o.health()).toMatchObject({ depth: 2, oldest_age_s: 90 });
      const [first, second] = o.read(0, 10);
      o.ack(first!.id);
      o.flush();
      expect(o.health().oldest_age_s).toBe(0);
      o.ack(second!.id);
      o.flush();
      expect(o.health()).toMatchObject({ depth: 0 });
      expect(o.health().oldest_age_s).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it("serves recent messages from memory exactly as SQLite holds them (ids, order, payloads)", async () => {
    const file = tempFile();
    const o = make(file);
    await o.start();
    for (let i = 0; i < 101; i++) o.publish(`t/${i % 3}`, { i });
    o.flush();
    const fromMemory = o.read(0, 1000);
    const store = new OutboxStore(file, "normal");
    try {
      expect(store.after(0, 1000)).toEqual(fromMemory);
      expect(o.read(fromMemory[49]!.id, 10)).toEqual(store.after(fromMemory[49]!.id, 10));
    } finally {
      store.close();
    }
    expect(fromMemory.map((r) => (JSON.parse(r.payload) as { i: number }).i)).toEqual(Array.from({ length: 101 }, (_, i) => i));
  });

  it("drops messages from memory once the reader has passed them, and still serves older ones from SQLite", async () => {
    const o = make(tempFile());
    await o.start();
    for (let i = 1; i <= 100; i++) o.publish("cityedge/dev-1/a", { i });
    o.flush();
    expect(o.stats().hot).toBe(100);
    const first = o.read(0, 60);
    expect(first.map((r) => r.id)).toEqual(Array.from({ length: 60 }, (_, k) => k + 1));
    const rest = o.read(60, 100);
    expect(rest.map((r) => (JSON.parse(r.payload) as { i: number }).i)).toEqual(Array.from({ length: 40 }, (_, k) => k + 61));
    expect(o.stats().hot).toBe(40);
    expect(o.read(100, 10)).toEqual([]);
    expect(o.stats().hot).toBe(0);
    // A reader starting over (after rewind) gets the same rows from the file.
    o.rewind();
    expect(o.read(0, 100).map((r) => r.id)).toEqual([...first, ...rest].map((r) => r.id));
  });

  it("keeps serving the right rows when big messages push older ones out of memory", async () => {
    const file = tempFile();
    const o = new Outbox({ file, deviceId: "dev-1", maxRows: 1000, maxBytes: 1e9, maxMessageBytes: 1_000_000, sync: "normal", log });
    outboxes.push(o);
    await o.start();
    const pad = "y".repeat(700_000);
    for (let i = 0; i < 40; i++) {
      o.publish("t/big", { i, pad });
      o.flush();
    }
    const rows = o.read(0, 100);
    expect(rows.map((r) => (JSON.parse(r.payload) as { i: number }).i)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const tail = o.read(rows[37]!.id, 100);
    expect(tail.map((r) => r.id)).toEqual([rows[38]!.id, rows[39]!.id]);
  });

  it("refuses wildcard topics, envelope keys in the body and bodies that are not objects", async () => {
    const o = make(tempFile());
    await o.start();
    expect(() => o.publish("t/+/x", {})).toThrow('refusing to publish to topic "t/+/x": wildcards or empty');
    expect(() => o.publish("t/#", {})).toThrow("wildcards");
    expect(() => o.publish("t/x", { seq: 4 })).toThrow('publish to "t/x": body must not set envelope key "seq"');
    expect(() => o.publish("t/x", [] as unknown as Record<string, unknown>)).toThrow("body must be a JSON object");
    expect(o.stats().pending).toBe(0);
  });

  it("refuses a message larger than max_message_bytes, naming its size and the limit", async () => {
    const file = tempFile();
    const o = new Outbox({ file, deviceId: "dev-1", maxRows: 1000, maxBytes: 1e9, maxMessageBytes: 2048, sync: "normal", log });
    outboxes.push(o);
    await o.start();
    o.publish("t/ok", { pad: "x".repeat(1790) });
    expect(() => o.publish("t/big", { pad: "x".repeat(1900) })).toThrow(
      'publish to "t/big": message is 2150 bytes, more than outbox.max_message_bytes (2048)',
    );
    expect(o.stats().pending).toBe(1);
  });

  it("keeps messages published before start and commits them on start", async () => {
    const o = make(tempFile());
    o.publish("t/early", { n: 1 });
    await new Promise((r) => setImmediate(r));
    expect(o.stats().pending).toBe(1);
    await o.start();
    expect(o.stats()).toMatchObject({ pending: 0, depth: 1 });
  });

  it("drops the oldest past the row quota, counts the drops and persists the count", async () => {
    const file = tempFile();
    const metrics = new Metrics();
    const o = make(file, { maxRows: 100, metrics });
    await o.start();
    for (let i = 1; i <= 250; i++) o.publish("t/q", { i });
    o.flush();
    expect(o.stats()).toMatchObject({ depth: 100, dropped: 150 });
    const rows = o.read(0, 1000).map((r) => JSON.parse(r.payload) as { seq: number });
    expect(rows[0]!.seq).toBe(151);
    expect(rows.at(-1)!.seq).toBe(250);
    expect(await metrics.render()).toContain("cityedge_outbox_dropped_total 150");
    await o.stop();
    const again = make(file, { maxRows: 100 });
    await again.start();
    expect(again.stats().dropped).toBe(150);
  });

  it("drops the oldest past the byte quota", async () => {
    const o = make(tempFile(), { maxBytes: 10_000 });
    await o.start();
    const pad = "x".repeat(900);
    for (let i = 0; i < 30; i++) o.publish("t/b", { pad });
    o.flush();
    const s = o.stats();
    expect(s.bytes).toBeLessThanOrEqual(10_000);
    expect(s.depth).toBeGreaterThan(5);
    expect(s.dropped).toBe(30 - s.depth);
  });
});

describe("OutboxStore", () => {
  it("deletes acknowledged messages in the same commit as the next ones, and keeps both or neither", async () => {
    const file = tempFile();
    const s = new OutboxStore(file, "normal");
    try {
      const msg = (seq: number) => ({ topic: "t", seq, payload: `{"seq":${seq}}`, retain: false });
      const first = s.append([msg(1), msg(2), msg(3)]);
      expect(s.rows).toBe(3);
      // A commit that fails (a NOT NULL topic) takes the deletes down with it.
      expect(() => s.append([{ ...msg(4), topic: null as unknown as string }], [first[0]!.id, first[1]!.id])).toThrow(/NOT NULL/);
      expect(s.rows).toBe(3);
      expect(s.after(0, 10).map((r) => r.id)).toEqual(first.map((m) => m.id));
      s.append([msg(4)], [first[0]!.id, first[1]!.id]);
      expect(s.after(0, 10).map((r) => (JSON.parse(r.payload) as { seq: number }).seq)).toEqual([3, 4]);
      expect(s.rows).toBe(2);
    } finally {
      s.close();
    }
    // Through the outbox: acknowledgements are deleted with the next commit.
    const o = make(tempFile());
    await o.start();
    for (let i = 0; i < 4; i++) o.publish("t/x", { i });
    o.flush();
    for (const r of o.read(0, 2)) o.ack(r.id);
    o.publish("t/x", { i: 4 });
    o.flush();
    expect(o.stats().depth).toBe(3);
  });

  it("keeps ids rising after the table empties, so a publisher's cursor never skips a new row", () => {
    const file = tempFile();
    const s = new OutboxStore(file, "normal");
    try {
      s.append([{ topic: "t", seq: 1, payload: "{}", retain: false }]);
      const [first] = s.after(0, 10);
      s.remove([first!.id]);
      expect(s.rows).toBe(0);
      s.append([{ topic: "t", seq: 2, payload: "{}", retain: true }]);
      const [second] = s.after(first!.id, 10);
      expect(second).toMatchObject({ retain: true });
      expect(second!.id).toBeGreaterThan(first!.id);
    } finally {
      s.close();
    }
  });
});
