import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { benchModel, modelsBench } from "../bench/models.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

// `cityedge bench models` prints figures and never fails on speed; these tests check that it runs
// every variant through the runtime's session path and reports what it could not run.
describe("bench models", () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "cityedge-bench-models-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("times fp32 and int8 of the shipped detector and reports int8's speed-up at the same threads", async () => {
    const [r] = await modelsBench(["--models=vehicles", "--rounds=2", "--runs=2", "--threads=1"]);
    expect(r!.name).toContain("vehicles");
    const f = r!.figures;
    expect(f["fp32 ms, 1 thread"]).toBeGreaterThan(0);
    expect(f["int8 ms, 1 thread"]).toBeGreaterThan(0);
    expect(f["int8 speed-up over fp32, 1 thread"]).toBeGreaterThan(0);
    expect(Object.keys(f).some((k) => k.startsWith("error"))).toBe(false);
  }, 60_000);

  it("at 2 threads also times two 1-thread sessions side by side, as the daemon runs them", async () => {
    const [r] = await modelsBench(["--models=demand_lstm", "--rounds=2", "--runs=3", "--threads=2"]);
    const f = r!.figures;
    expect(f["fp32 ms, 2 threads"]).toBeGreaterThan(0);
    expect(f["fp32 runs/s, 2 sessions x 1 thread"]).toBeGreaterThan(0);
    expect(f["fp16 runs/s, 2 sessions x 1 thread"]).toBeGreaterThan(0);
    expect(f["fp16 speed-up over fp32, 2 sessions x 1 thread"]).toBeGreaterThan(0);
    expect(Object.keys(f).some((k) => k.startsWith("error"))).toBe(false);
  }, 60_000);

  it("names a variant whose file does not match its sha256 instead of timing it", async () => {
    const src = path.join(REPO_ROOT, "models", "demand_lstm");
    const manifest = JSON.parse(readFileSync(path.join(src, "manifest.json"), "utf8")) as { variants: Record<string, { file: string }> };
    for (const v of Object.values(manifest.variants)) copyFileSync(path.join(src, v.file), path.join(tmp, v.file));
    const fp16 = path.join(tmp, manifest.variants.fp16!.file);
    const bytes = readFileSync(fp16);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    writeFileSync(fp16, bytes);
    writeFileSync(path.join(tmp, "manifest.json"), JSON.stringify(manifest));
    const r = await benchModel(path.join(tmp, "manifest.json"), "demand_lstm", [1], 1, 1);
    expect(String(r.figures["error, 1 thread"])).toMatch(/sha256/i);
    expect(String(r.figures["error, 1 thread"])).toContain(manifest.variants.fp16!.file);
  });

  it("skips a manifest it cannot read, saying why", async () => {
    writeFileSync(path.join(tmp, "broken.json"), "{ not json");
    const r = await benchModel(path.join(tmp, "broken.json"), "broken", [1], 1, 1);
    expect(String(r.figures.skipped)).toContain("broken.json");
  });
});
