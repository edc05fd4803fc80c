import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { agreement } from "../bench/gpu.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

describe("scripts/gpu-check.sh", () => {
  it("runs here in one go: doctor, then the CPU part, and says there is no GPU", () => {
    const r = spawnSync("bash", [path.join(REPO_ROOT, "scripts/gpu-check.sh"), "--batch", "2", "--runs", "3"], {
      encoding: "utf8",
      timeout: 300_000,
    });
    expect(r.status).toBe(0);
    const out = r.stdout;
    expect(out).toContain("== cityedge doctor");
    expect(out).toContain("providers (a one-node model created and run on each)");
    expect(out).toMatch(/^gpu-check: vehicles on cpu \(int8\)$/m);
    expect(out).toMatch(/^ {2}batch 1: ms median\s+\d/m);
    expect(out).toMatch(/^ {2}batch 2: pictures\/s\s+\d/m);
    expect(out).toMatch(/^ {2}agreement with CPU fp32: boxes matched\s+\d+\/\d+ \(IoU >= 0\.5, same class\)$/m);
    expect(out).toMatch(/^ {2}agreement with CPU fp32: largest score difference\s+[\d.]+$/m);
    // No GPU on this machine (nor in CI): it says so, after the CPU part.
    expect(out).toContain("gpu-check: no GPU here (no working cuda or tensorrt provider); the CPU part above is all this machine can show");
    expect(out).toMatch(/gpu-check: done in \d+ s\n$/);
  }, 300_000);

  it("refuses arguments it does not know", () => {
    const r = spawnSync("bash", [path.join(REPO_ROOT, "scripts/gpu-check.sh"), "--batch", "x"], { encoding: "utf8" });
    expect(r.status).toBe(64);
    expect(r.stderr).toBe("gpu-check: --batch and --runs take whole numbers\n");
  });
});

describe("agreement with the CPU result", () => {
  const box = (x: number, cls = 0, score = 0.9) => ({ x1: x, y1: 0, x2: x + 10, y2: 10, class_id: cls, score });
  it("matches boxes of the same class at IoU >= 0.5, once each, and reports the largest score difference", () => {
    const reference = [[box(0), box(50), box(100, 1)], [box(0)]];
    const other = [[box(1, 0, 0.8), box(100, 2), box(200)], []];
    // box(1) overlaps box(0) at IoU 9/11; box(50) has no partner; box(100) changed class.
    expect(agreement(reference, other)).toEqual({ matched: 1, reference: 4, extra: 2, maxScoreDiff: expect.closeTo(0.1, 6) });
  });
});
