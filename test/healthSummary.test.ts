import { describe, expect, it } from "vitest";
import { summarizeHealth } from "../runtime/http/healthSummary.js";
import type { PartKind } from "../runtime/part.js";
import type { PartReport } from "../runtime/partHealth.js";

const lag = { p50_ms: 1, p99_ms: 5, max_ms: 9 };

/** A report as the daemon gives it; the tests fill only the fields the summary reads. */
const report = (name: string, kind: PartKind, health: Record<string, unknown>, id?: string) =>
  ({ name, kind, ...(id !== undefined ? { id } : {}), health }) as PartReport;

describe("summarizeHealth", () => {
  it("is ok when every part runs, and sorts parts into cameras, meters, models and the uplink by their kind", () => {
    const s = summarizeHealth({
      deviceId: "d1",
      lagLimitMs: 1000,
      lag,
      parts: [
        report("mqtt", "mqtt", { state: "running", connected: true }),
        report("outbox", "outbox", {
          state: "running",
          depth: 3,
          bytes: 120,
          dropped: 0,
          pending: 0,
          disk_full: false,
          free_bytes: 1048576,
          epoch: "20261202T000000Z-0a1b2c3d",
        }),
        report("camera:gate", "camera", { state: "running", fps_in: 10 }, "gate"),
        report("detector:yolox_nano", "detector", { state: "running", provider: "cpu" }, "yolox_nano"),
        report("pipeline:gate", "pipeline", { state: "running", model: "yolox_nano", frames: 12 }, "gate"),
        report("meters", "meters", { state: "running", meters: { m1: { state: "running", readings: 4 } } }),
      ],
    });
    expect(s.state).toBe("ok");
    expect(s.problems).toEqual([]);
    expect(Object.keys(s.cameras)).toEqual(["gate"]);
    expect(s.cameras.gate).toMatchObject({ fps_in: 10, detection: { model: "yolox_nano", frames: 12 } });
    expect(s.models.yolox_nano).toMatchObject({ provider: "cpu" });
    expect(s.meters.m1).toMatchObject({ readings: 4 });
    expect(s.mqtt).toMatchObject({ connected: true });
    expect(s.outbox).toEqual({ depth: 3, bytes: 120, dropped: 0, disk_full: false, free_bytes: 1048576, epoch: "20261202T000000Z-0a1b2c3d" });
    expect(Object.keys(s.parts)).toEqual(["mqtt", "outbox", "camera:gate", "detector:yolox_nano", "pipeline:gate", "meters"]);
  });

  it("groups by kind and id, not by the part's name", () => {
    const s = summarizeHealth({
      deviceId: "d1",
      lagLimitMs: 1000,
      lag,
      parts: [report("north gate", "camera", { state: "running" }, "north"), report("camera:fake", "other", { state: "running" })],
    });
    expect(Object.keys(s.cameras)).toEqual(["north"]);
    expect(Object.keys(s.parts)).toEqual(["north gate", "camera:fake"]);
  });

  it("is degraded, naming each reason, when a part or an item in it is not running or the loop lags", () => {
    const s = summarizeHealth({
      deviceId: "d1",
      lagLimitMs: 100,
      lag: { p50_ms: 50, p99_ms: 250, max_ms: 400 },
      parts: [
        report("mqtt", "mqtt", { state: "degraded", error: "connect ECONNREFUSED 127.0.0.1:1883" }),
        report("camera:gate", "camera", { state: "failed", error: "ffmpeg: Connection refused" }, "gate"),
        report("meters", "meters", { state: "degraded", meters: { m1: { state: "failed", error: "timeout" }, m2: { state: "running" } } }),
        report("http", "http", {
          state: "retrying",
          error: "http: cannot listen on 127.0.0.1:9108: EADDRINUSE",
          supervisor: { restarts: 1, recent_failures: 1 },
        }),
      ],
    });
    expect(s.state).toBe("degraded");
    expect(s.problems).toEqual([
      "mqtt is degraded: connect ECONNREFUSED 127.0.0.1:1883",
      "camera:gate is failed: ffmpeg: Connection refused",
      "meters is degraded",
      "http is retrying: http: cannot listen on 127.0.0.1:9108: EADDRINUSE",
      "meter m1 is failed: timeout",
      "event-loop lag p99 250 ms is over the limit of 100 ms",
    ]);
  });

  it("reports an absent uplink when no MQTT part runs", () => {
    expect(summarizeHealth({ deviceId: "d1", lagLimitMs: 100, lag, parts: [] }).mqtt).toEqual({ state: "absent" });
  });

  it("lifts each forecast series out of the forecasts part, and names a series that is not running", () => {
    const s = summarizeHealth({
      deviceId: "d1",
      lagLimitMs: 1000,
      lag,
      parts: [
        report("forecasts", "forecast", {
          state: "degraded",
          series: {
            load: { state: "running", candidate: "holt_winters", skipped_by_reason: { gap: 1 } },
            daily: { state: "degraded", error: "model lstm (step 30 min) cannot serve a 1 d series", candidate: "seasonal_naive_week" },
          },
        }),
      ],
    });
    expect(s.forecasts.load).toMatchObject({ candidate: "holt_winters", skipped_by_reason: { gap: 1 } });
    expect(s.problems).toContain("forecast daily is degraded: model lstm (step 30 min) cannot serve a 1 d series");
  });
});
