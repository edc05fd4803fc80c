import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DoctorReport } from "../runtime/cli/doctor.js";
import { runCli } from "./helpers/cli.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

/**
 * `cityedge doctor` as an operator runs it, on this machine: the CPU provider works, the GPU ones
 * are tried for real and fail for want of CUDA/TensorRT (none here), ffmpeg is Debian's.
 */
let dir: string;
let report: DoctorReport;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-doctor-"));
  const r = await runCli(["doctor", "--json"]);
  expect(r.code).toBe(0);
  report = JSON.parse(r.stdout) as DoctorReport;
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("cityedge doctor", () => {
  it("tries every provider for real and says which work, with the binding and whether options are honoured", () => {
    expect(report.providers.map((p) => p.name)).toEqual(["cpu", "cuda", "tensorrt"]);
    const cpu = report.providers[0]!;
    expect(cpu).toMatchObject({ works: true, error: null, options: null, compiled_in: true });
    expect(cpu.ms).toBeGreaterThanOrEqual(0);
    for (const p of report.providers.slice(1)) {
      // Either it ran (a GPU host) or it says why not; never silently nothing.
      expect(p.works ? p.ms : p.error).toBeTruthy();
      if (report.binding.patched && report.binding.honoured.includes(p.name)) expect(p.options).toBe("honoured");
      else expect(p.options).toContain("is the stock one");
    }
    expect(report.binding.version).toBe("1.23.2");
    expect(report.binding.file).toMatch(/onnxruntime_binding\.node$/);
  });

  it("names ffmpeg with its version, hwaccels and hardware decoders, and the device", () => {
    expect(report.ffmpeg).toMatchObject({ version: expect.stringMatching(/^ffmpeg version /) });
    expect(Array.isArray((report.ffmpeg as { hwaccels: string[] }).hwaccels)).toBe(true);
    expect(report.platform).toBe(`${process.platform} ${process.arch}`);
    expect(report.jetson === null || typeof report.jetson.model === "string").toBe(true);
  });

  it("says which variant and provider each shipped model would load here", () => {
    const vehicles = report.models.find((m) => m.id === "vehicles")!;
    const gpu = report.providers.find((p) => p.name === "tensorrt")!.works;
    if (!gpu) expect(vehicles).toMatchObject({ provider: "cpu", variant: "int8", cpu_ms: expect.any(Number), problem: null });
  });

  it("reads a config's models, and says when none of a model's providers would work", async () => {
    const cfg = path.join(dir, "cityedge.yaml");
    const manifest = path.join(REPO_ROOT, "models/vehicles/manifest.json");
    writeFileSync(
      cfg,
      YAML.stringify({
        device_id: "dev-1",
        data_dir: path.join(dir, "data"),
        mqtt: { url: "mqtt://127.0.0.1:1" },
        models: [
          { id: "fast", manifest, providers: ["tensorrt", "cpu"], variant: "auto" },
          { id: "sym", manifest, providers: ["cpu"], variant: "int8_sym" },
          { id: "gpuonly", manifest, providers: ["tensorrt"], tensorrt: { precision: "fp16" } },
        ],
      }),
    );
    const r = await runCli(["doctor", "--config", cfg, "--json"]);
    expect(r.code).toBe(0);
    const models = (JSON.parse(r.stdout) as DoctorReport).models;
    const tensorrt = (JSON.parse(r.stdout) as DoctorReport).providers.find((p) => p.name === "tensorrt")!;
    expect(models.find((m) => m.id === "sym")).toMatchObject({ provider: "cpu", variant: "int8_sym", cpu_ms: expect.any(Number) });
    if (!tensorrt.works) {
      expect(models.find((m) => m.id === "fast")).toMatchObject({ provider: "cpu", variant: "int8" });
      expect(models.find((m) => m.id === "gpuonly")).toMatchObject({ provider: null, variant: null, problem: "tensorrt: does not work here" });
    } else {
      expect(models.find((m) => m.id === "gpuonly")).toMatchObject({ provider: "tensorrt", variant: "fp32", precision: "fp16" });
    }
    // The table for people has the same sections.
    const table = await runCli(["doctor", "--config", cfg]);
    expect(table.code).toBe(0);
    for (const heading of [
      "device",
      "onnxruntime binding",
      "providers (a one-node model created and run on each)",
      "ffmpeg",
      "models (the variant and provider each would load here)",
    ])
      expect(table.stdout.split("\n")).toContain(heading);
    expect(table.stdout).toMatch(/^ {2}gpuonly\s+/m);
  }, 60_000);

  it("refuses an invalid config with its problems (exit 78) and an unknown option (64)", async () => {
    const bad = path.join(dir, "bad.yaml");
    writeFileSync(bad, "device_id: dev-1\nmodels:\n  - id: m\n    manifest: x.json\n    tensorrt: { fp16: true }\n");
    const r = await runCli(["doctor", "--config", bad]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/bad\.yaml:5:\d+ models\[0\]\.tensorrt/);
    const u = await runCli(["doctor", "--colour"]);
    expect(u.code).toBe(64);
    expect(u.stderr).toContain("cityedge doctor: unknown option --colour");
  }, 60_000);
});
