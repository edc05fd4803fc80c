import path from "node:path";
import { describe, expect, it } from "vitest";
import { capacityBench, parseCapacityArgs, searchCapacity, type Attempt, type CapacityRow } from "../bench/capacity.js";
import { BenchUsageError, runBench } from "../bench/index.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

const DEMO = path.join(REPO_ROOT, "models/synthetic/demo.mp4");
const VEHICLES = ["--model", "vehicles", "--clip", DEMO];

describe("bench capacity", () => {
  it("refuses a variant the manifest does not list, naming the ones it has", () => {
    expect(() => parseCapacityArgs([...VEHICLES, "--variant", "int4"])).toThrow(
      /--variant "int4": model cityedge-vehicles has no such variant \(it has: fp32, fp16, int8, int8_sym\)/,
    );
    expect(() => parseCapacityArgs([...VEHICLES, "--variant", "int4"])).toThrow(BenchUsageError);
    expect(() => parseCapacityArgs([...VEHICLES, "--gating", "maybe"])).toThrow(/--gating "maybe": expected on or off/);
    expect(() => parseCapacityArgs([...VEHICLES, "--max-cameras", "0"])).toThrow(/--max-cameras must be a whole number 1\.\.256, got "0"/);
    const { combos } = parseCapacityArgs([...VEHICLES, "--variant", "fp32,int8", "--gating", "on,off", "--scene", "quiet"]);
    expect(combos).toEqual([
      { variant: "fp32", gating: true, scene: "quiet" },
      { variant: "fp32", gating: false, scene: "quiet" },
      { variant: "int8", gating: true, scene: "quiet" },
      { variant: "int8", gating: false, scene: "quiet" },
    ]);
  });

  it("exits 64 (usage) on a bad option, before any camera starts", async () => {
    expect(await runBench(["capacity", ...VEHICLES, "--scene", "noisy"])).toBe(64);
  });

  it("finds the largest count that holds: doubling, then bisection", async () => {
    const tried: number[] = [];
    const fake = (limit: number) => async (n: number) => {
      tried.push(n);
      return { cameras: n, holds: n <= limit } as Attempt;
    };
    expect(await searchCapacity(32, fake(11))).toMatchObject({ sustained: 11, capped: false });
    expect(tried).toEqual([1, 2, 4, 8, 16, 12, 10, 11]);
    tried.length = 0;
    expect(await searchCapacity(6, fake(100))).toMatchObject({ sustained: 6, capped: true });
    expect(tried).toEqual([1, 2, 4, 6]);
    expect((await searchCapacity(8, fake(0))).sustained).toBe(0);
  });

  it("runs two real cameras through the detector; every frame offered is delivered, dropped or still waiting", async () => {
    const [result] = await capacityBench([...VEHICLES, "--cameras", "2", "--seconds", "3", "--warmup", "1", "--gating", "on,off"]);
    expect(result!.name).toBe("capacity");
    expect(result!.table!.columns).toContain("cameras sustained");
    expect(result!.table!.rows).toHaveLength(2);
    const rows = result!.data as CapacityRow[];
    expect(rows.map((r) => r.gating)).toEqual([true, false]);
    for (const row of rows) {
      expect(row).toMatchObject({ model: "cityedge-vehicles", variant: "fp32", scene: "busy", fps: 10 });
      expect(row.attempts).toHaveLength(1);
      const a = row.attempts[0]!;
      expect(a.cameras).toBe(2);
      expect(a.per_camera.map((c) => c.id)).toEqual(["cam-0", "cam-1"]);
      for (const c of a.per_camera) {
        expect(c.offered).toBeGreaterThan(0);
        expect(c.delivered + c.dropped + c.pending_change).toBe(c.offered);
        expect(c.inferred + c.skipped).toBe(c.delivered);
        if (!row.gating) expect(c.skipped).toBe(0);
      }
      const offered = a.per_camera.reduce((s, c) => s + c.offered, 0);
      const dropped = a.per_camera.reduce((s, c) => s + c.dropped, 0);
      expect(a.drop_pct).toBeCloseTo((dropped / offered) * 100, 1);
      expect(a.holds).toBe(dropped / offered < 0.01 && a.per_camera.every((c) => c.delivered + 1 >= 0.99 * 10 * a.window_s));
      expect(row.sustained).toBe(a.holds ? 2 : 0);
      expect(a.cpu_pct).toBeGreaterThan(0);
    }
  }, 120_000);
});
