import { describe, expect, it } from "vitest";
import { Metrics } from "../runtime/metrics.js";

describe("Prometheus registry", () => {
  it("keeps one series per label set, whatever the key order, and escapes label values", () => {
    const m = new Metrics();
    const c = m.counter("cityedge_test_total", "A test counter");
    c.inc({ camera: "a", model: "x" });
    c.inc({ model: "x", camera: "a" }, 2);
    c.inc({ camera: 'we"ird\\cam\nera' });
    expect(c.get({ model: "x", camera: "a" })).toBe(3);
    const text = m.render();
    expect(text).toContain('cityedge_test_total{camera="a",model="x"} 3');
    expect(text).toContain('cityedge_test_total{camera="we\\"ird\\\\cam\\nera"} 1');
    expect(text).toContain("# TYPE cityedge_test_total counter");
  });

  it("returns the first metric for a name registered again, and refuses the name as another type", () => {
    const m = new Metrics();
    const a = m.counter("cityedge_frames_total", "Frames");
    a.inc();
    expect(m.counter("cityedge_frames_total", "Frames")).toBe(a);
    expect(m.counter("cityedge_frames_total", "Frames").get()).toBe(1);
    expect(() => m.gauge("cityedge_frames_total", "Frames")).toThrow("metric cityedge_frames_total already registered as a counter");
    expect(() => m.counter("bad name", "x")).toThrow('metric name "bad name" is not a valid Prometheus name');
  });

  it("renders histogram buckets cumulatively with sum and count", () => {
    const m = new Metrics();
    const h = m.histogram("cityedge_run_seconds", "Runs", [0.1, 0.01]);
    for (const v of [0.005, 0.05, 0.5]) h.observe(v, { model: "m" });
    const text = m.render();
    expect(text).toContain('cityedge_run_seconds_bucket{le="0.01",model="m"} 1');
    expect(text).toContain('cityedge_run_seconds_bucket{le="0.1",model="m"} 2');
    expect(text).toContain('cityedge_run_seconds_bucket{le="+Inf",model="m"} 3');
    expect(text).toContain('cityedge_run_seconds_count{model="m"} 3');
  });
});
