import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, formatProblem } from "../runtime/config/errors.js";
import { loadConfig } from "../runtime/config/load.js";
import { aggregateOf } from "../runtime/config/sections/forecasts.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-meter-config-"));
let n = 0;

function problems(text: string): string[] {
  const f = path.join(dir, `c${n++}.yaml`);
  writeFileSync(f, text);
  try {
    loadConfig(f, {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => formatProblem(p).replace(f, "F"));
  }
  throw new Error("expected the config to be rejected");
}

const MODEL = "models:\n  - { id: lstm, manifest: m.json }\n";

describe("meters and forecasts config", () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("fills a Modbus meter's defaults and keeps a preset's registers", () => {
    const f = path.join(dir, "ok.yaml");
    writeFileSync(
      f,
      `device_id: d\n${MODEL}meters:\n  - { id: m1, driver: modbus-tcp, host: 10.0.0.4, preset: sdm630 }\nforecasts:\n  - { id: f1, source: "meter:m1:power_w", model: lstm }\n`,
    );
    const { config } = loadConfig(f, {});
    expect(config.meters[0]).toMatchObject({
      driver: "modbus-tcp",
      port: 502,
      unit_id: 1,
      interval_ms: 1000,
      timeout_ms: 1000,
      retries: 1,
      word_order: "big",
      byte_order: "big",
    });
    expect(config.forecasts[0]).toMatchObject({
      scaling: "auto",
      max_gap_steps: 6,
      max_missing_ratio: 0.1,
      backtest_days: 14,
      reselect_h: 24,
      max_interpolate: 4,
    });
    expect(aggregateOf(config.forecasts[0]!)).toBe("mean");
    expect(aggregateOf({ source: "camera:gate-3:counts" })).toBe("sum");
    expect(aggregateOf({ source: "camera:gate-3:counts", aggregate: "mean" })).toBe("mean");
    expect(config.history).toEqual({ raw_retention_h: 6, retention_days: 60 });
  });

  it("names a forecast source that points at no meter, or at a value the meter does not have", () => {
    expect(
      problems(
        `device_id: d\n${MODEL}meters:\n  - { id: m1, driver: modbus-tcp, host: h, preset: sdm120 }\nforecasts:\n  - { id: f1, source: "meter:m2:power_w", model: lstm }\n  - { id: f2, source: "meter:m1:power_l1_w", model: lstm }\n  - { id: f3, source: "meter:m1", model: lstm }\n`,
      ),
    ).toEqual([
      'F:7:15 forecasts[0].source: unknown meter "m2" (meters: m1)',
      'F:8:15 forecasts[1].source: meter "m1" has no value "power_l1_w" (values: current_a, export_energy_kwh, frequency_hz, import_energy_kwh, power_factor, power_w, total_energy_kwh, voltage_v)',
      'F:9:15 forecasts[2].source: must be "meter:<meter_id>:<value>" or "camera:<camera_id>:counts", got "meter:m1"',
    ]);
  });

  it("rejects bad register entries and an unknown driver with the allowed values", () => {
    const p = problems(
      `device_id: d\nmeters:\n  - id: m1\n    driver: modbus-tcp\n    host: h\n    registers:\n      - { name: Power, address: 70000, type: int64 }\n  - { id: m2, driver: bacnet }\n`,
    );
    expect(p).toContain(
      'F:7:11 meters[0].registers[0].name: must be 1-64 characters of lower-case letters, digits and "_", starting with a letter, got "Power"',
    );
    expect(p).toContain("F:7:24 meters[0].registers[0].address: must be 0..65535, got 70000");
    expect(p.find((l) => l.includes("registers[0].type"))).toMatch(
      /must be one of "int16", "uint16", "int32", "uint32", "float32", "float64", got "int64"/,
    );
    expect(p).toContain('F:8:15 meters[1].driver: must be one of "modbus-tcp", "modbus-rtu", "mqtt", "replay", "simulated", got "bacnet"');
  });
});
