import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CountsBody } from "../runtime/contract/index.js";
import { HistoryRecorder, totalCrossings } from "../runtime/history/historyRecorder.js";
import { HistoryStore } from "../runtime/history/historyStore.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { busInto } from "./helpers/bus.js";

describe("camera counts as a forecast series", () => {
  let dir: string;
  let store: HistoryStore;
  const topics = new Topics("cityedge", "dev");
  const log = pino({ level: "silent" });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-counts-"));
    store = new HistoryStore({ file: path.join(dir, "h.sqlite"), rawRetentionMs: 86_400_000, retentionMs: 86_400_000, log });
    await store.start();
  });
  afterAll(async () => {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const counts = (cameraId: string, intervalStart: string): CountsBody => ({
    camera_id: cameraId,
    interval_start: intervalStart,
    interval_end: "2026-03-02T08:01:00.000Z",
    frames: 600,
    lines: [
      { line_id: "a", counts: { car: { in: 3, out: 2 }, bus: { in: 1, out: 0 } } },
      { line_id: "b", counts: { car: { in: 0, out: 4 } } },
    ],
    zones: [],
    road: { vehicles_present: 1, vehicles_now: 1, flow_per_min: 10, mean_speed: 0.01, congestion: "none" },
  });

  it("every counts message is published, and the recorder keeps the crossings of the named cameras only", async () => {
    const out: string[] = [];
    const bus = busInto({ publish: (t) => void out.push(t) }, topics);
    const recorder = new HistoryRecorder({ bus, store, countsOf: ["gate-3"], log });
    await recorder.start();
    bus.emit("counts", counts("gate-3", "2026-03-02T08:00:00.000Z"));
    bus.emit("counts", counts("other", "2026-03-02T08:00:00.000Z"));
    await recorder.stop();
    bus.emit("counts", counts("gate-3", "2026-03-02T08:01:00.000Z"));
    expect(out).toEqual([topics.counts("gate-3"), topics.counts("other"), topics.counts("gate-3")]);
    expect(totalCrossings(counts("gate-3", "2026-03-02T08:00:00.000Z"))).toBe(10);
    expect(store.raw("camera:gate-3:counts", 0, Infinity)).toEqual([{ ts: Date.parse("2026-03-02T08:00:00.000Z"), value: 10, quality: "good" }]);
    expect(store.raw("camera:other:counts", 0, Infinity)).toEqual([]);
    expect(recorder.health()).toMatchObject({ state: "stopped", recorded: 1 });
  });

  it("a store that cannot be written makes the recorder degraded, says why, and recovers", async () => {
    const closed = new HistoryStore({ file: path.join(dir, "closed.sqlite"), rawRetentionMs: 86_400_000, retentionMs: 86_400_000, log });
    const bus = busInto({ publish: () => undefined }, topics);
    const recorder = new HistoryRecorder({ bus, store: closed, countsOf: ["gate-3"], log });
    await recorder.start();
    bus.emit("counts", counts("gate-3", "2026-03-02T08:00:00.000Z"));
    expect(recorder.health()).toEqual({ state: "degraded", recorded: 0, error: "history store is not open (recording camera:gate-3:counts)" });
    await closed.start();
    bus.emit("counts", counts("gate-3", "2026-03-02T08:02:00.000Z"));
    expect(recorder.health()).toEqual({ state: "running", recorded: 1 });
    await recorder.stop();
    await closed.stop();
  });
});
