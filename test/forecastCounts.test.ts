import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countsTap, totalCrossings } from "../runtime/forecast/countsTap.js";
import { HistoryStore } from "../runtime/history/historyStore.js";
import type { MessageSink } from "../runtime/mqtt/sink.js";
import { Topics } from "../runtime/mqtt/topics.js";

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

  it("passes every message on and records the crossings of the named cameras' counts", () => {
    const out: string[] = [];
    const sink: MessageSink = { publish: (t) => void out.push(t) };
    const tap = countsTap(sink, topics, store, ["gate-3"], log);
    const body = {
      camera_id: "gate-3",
      interval_start: "2026-03-02T08:00:00.000Z",
      lines: [
        { id: "a", counts: { car: { in: 3, out: 2 }, bus: { in: 1, out: 0 } } },
        { id: "b", counts: { car: { in: 0, out: 4 } } },
      ],
    };
    tap.publish(topics.counts("gate-3"), body);
    tap.publish(topics.counts("other"), body);
    tap.publish(topics.detections("gate-3"), { objects: [] });
    tap.publish(topics.counts("gate-3"), { interval_start: "not a time", lines: [] });
    expect(out).toEqual([topics.counts("gate-3"), topics.counts("other"), topics.detections("gate-3"), topics.counts("gate-3")]);
    expect(totalCrossings(body)).toBe(10);
    expect(store.raw("camera:gate-3:counts", 0, Infinity)).toEqual([{ ts: Date.parse("2026-03-02T08:00:00.000Z"), value: 10, quality: "good" }]);
    expect(store.raw("camera:other:counts", 0, Infinity)).toEqual([]);
  });
});
