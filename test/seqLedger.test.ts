/** The sequence ledger on real files: torn writes, damage, growth, and what the outbox does with each. */
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { Outbox } from "../runtime/outbox/outbox.js";
import { newEpoch, SeqLedger, type LedgerState } from "../runtime/outbox/seqLedger.js";

const log = pino({ level: "silent" });
const dirs: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "cityedge-ledger-"));
  dirs.push(d);
  return d;
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const state = (topics: Record<string, [number, number]>, connections = 1): LedgerState => ({
  epoch: "20260301T120000Z-0a1b2c3d",
  connections,
  dropped: 0,
  topics: new Map(Object.entries(topics).map(([t, [used, committed]]) => [t, { used, committed }])),
});

function spoil(file: string, at: number): void {
  const fd = openSync(file, "r+");
  writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, at);
  closeSync(fd);
}

describe("SeqLedger", () => {
  it("keeps two copies: a torn write of the newer one leaves the older one, whole", () => {
    const file = path.join(tempDir(), "outbox.seqstate");
    const a = new SeqLedger(file);
    a.create(state({ "t/a": [5, 5] }));
    a.write(state({ "t/a": [9, 9] }));
    a.close();
    expect(statSync(file).size).toBe(128 * 1024);
    const ok = new SeqLedger(file).open();
    expect(ok.kind === "ok" && ok.state.topics.get("t/a")).toEqual({ used: 9, committed: 9 });
    // The newest copy (generation 2) sits at offset 0; spoil it, as a power cut mid-write would.
    spoil(file, 20);
    const older = new SeqLedger(file);
    const got = older.open();
    expect(got.kind === "ok" && got.state.topics.get("t/a")).toEqual({ used: 5, committed: 5 });
    older.close();
  });

  it("moves a ledger with no whole copy aside with a timestamp, and says why", () => {
    const dir = tempDir();
    const file = path.join(dir, "outbox.seqstate");
    const l = new SeqLedger(file);
    l.create(state({ "t/a": [1, 1] }));
    l.close();
    spoil(file, 20);
    spoil(file, 64 * 1024 + 20);
    const got = new SeqLedger(file).open();
    expect(got).toMatchObject({ kind: "damaged", reason: "neither copy in it is whole" });
    expect(readdirSync(dir).filter((f) => /^outbox\.seqstate\.damaged-\d{4}-/.test(f))).toHaveLength(1);
    expect(new SeqLedger(file).open()).toEqual({ kind: "missing" });
  });

  it("grows into a larger file when the topics no longer fit, keeping them all", () => {
    const file = path.join(tempDir(), "outbox.seqstate");
    const l = new SeqLedger(file);
    l.create(state({}));
    const many: Record<string, [number, number]> = {};
    for (let i = 0; i < 3000; i++) many[`cityedge/dev-1/cameras/cam-${i}/detections`] = [i, i];
    l.write(state(many));
    l.close();
    expect(statSync(file).size).toBeGreaterThan(128 * 1024);
    const got = new SeqLedger(file).open();
    expect(got.kind === "ok" && got.state.topics.size).toBe(3000);
  });

  it("epochs are unique and readable", () => {
    const a = newEpoch(new Date("2026-03-01T12:00:00.123Z"));
    expect(a).toMatch(/^20260301T120000Z-[0-9a-f]{8}$/);
    expect(newEpoch()).not.toBe(newEpoch());
  });
});

describe("the outbox and its ledger", () => {
  it("a damaged ledger is reported in health and rebuilt from the outbox file: seq goes on, same epoch", async () => {
    const dir = tempDir();
    const make = () => new Outbox({ file: path.join(dir, "outbox.sqlite"), deviceId: "dev-1", maxRows: 1000, maxBytes: 1e9, sync: "normal", log });
    const a = make();
    await a.start();
    for (let i = 0; i < 3; i++) a.publish("t/a", { i });
    a.flush();
    const epoch = a.epoch;
    await a.stop();
    const file = path.join(dir, "outbox.seqstate");
    spoil(file, 20);
    spoil(file, 64 * 1024 + 20);
    const b = make();
    await b.start();
    expect(b.health()).toMatchObject({
      state: "degraded",
      error: expect.stringMatching(/the sequence ledger .* was damaged \(neither copy in it is whole\); moved to .*\.damaged-/),
    });
    expect(b.epoch).toBe(epoch);
    b.publish("t/a", { i: 3 });
    b.flush();
    expect(b.read(0, 10).map((r) => (JSON.parse(r.payload) as { seq: number }).seq)).toEqual([1, 2, 3, 4]);
    await b.stop();
  });

  it("a deleted outbox file continues after the ledger's marks, with the same epoch and connection number", async () => {
    const dir = tempDir();
    const make = () => new Outbox({ file: path.join(dir, "outbox.sqlite"), deviceId: "dev-1", maxRows: 1000, maxBytes: 1e9, sync: "normal", log });
    const a = make();
    await a.start();
    a.setConnections(4);
    for (let i = 0; i < 7; i++) a.publish("t/a", { i });
    a.flush();
    const epoch = a.epoch;
    await a.stop();
    for (const f of ["outbox.sqlite", "outbox.sqlite-wal", "outbox.sqlite-shm"]) rmSync(path.join(dir, f), { force: true });
    const b = make();
    await b.start();
    expect([b.epoch, b.connections()]).toEqual([epoch, 4]);
    b.publish("t/a", { i: 7 });
    b.flush();
    expect(b.read(0, 10).map((r) => (JSON.parse(r.payload) as { seq: number }).seq)).toEqual([8]);
    expect(b.health().error).toMatch(/does not hold the last 7 seqs committed to it \(1 topic, e\.g\. t\/a\)/);
    await b.stop();
  });
});
