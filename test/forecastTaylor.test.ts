import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import YAML from "yaml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { Mosquitto } from "./helpers/mosquitto.js";
import { validateMessage } from "./helpers/schemas.js";
import { REPO_ROOT, sharedFile } from "./helpers/sharedData.js";
import { Subscriber, type Received } from "./helpers/subscriber.js";

const CSV = sharedFile("timeseries/taylor_uk_demand_halfhourly_2000.csv");
const MANIFEST = path.join(REPO_ROOT, "models/demand_lstm/manifest.json");
const HISTORY = 384;
const HORIZON = 48;
const STEP_MS = 1_800_000;
/** Replay speed: 8 half-hour rows per wall-clock second. */
const SPEED = 8 * 1800;

interface Row {
  stamp: string;
  value: number;
}

function readTaylor(file: string): Row[] {
  return readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => {
      const [stamp, v] = l.split(",");
      return { stamp: stamp!, value: Number(v) };
    });
}

/**
 * The offline reference, written apart from the daemon's code as models/demand_lstm/build/common.py
 * does it: the value normalized by the manifest, then calendar features of the row's own
 * local-clock stamp (Monday = 0).
 */
function offlineInput(values: number[], stamps: string[], mean: number, std: number): Float32Array {
  const out = new Float32Array(values.length * 6);
  values.forEach((v, r) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(stamps[r]!)!;
    const tod = (Number(m[4]) * 60 + Number(m[5])) / 1440;
    const dow = (new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))).getUTCDay() + 6) % 7;
    out.set(
      [
        (v - mean) / std,
        Math.sin(2 * Math.PI * tod),
        Math.cos(2 * Math.PI * tod),
        Math.sin((2 * Math.PI * dow) / 7),
        Math.cos((2 * Math.PI * dow) / 7),
        dow >= 5 ? 1 : 0,
      ],
      r * 6,
    );
  });
  return out;
}

/** The file's stamps are the UK's local clock; June to August 2000 is all summer time (UTC+1). */
const toIso = (stamp: string): string => new Date(`${stamp}+01:00`).toISOString();

/**
 * The window ending before row s as the daemon should see it: the rows it was given, and the
 * missing ones filled (linear inside, the nearest value at the edges). Returns the count filled.
 */
function expectedWindow(rows: Row[], s: number, given: Set<number>): { values: number[]; filled: number } {
  const idx = Array.from({ length: HISTORY }, (_, r) => s - HISTORY + r);
  const known = idx.map((i) => (given.has(i) ? rows[i]!.value : undefined));
  const values = known.map((v, r) => {
    if (v !== undefined) return v;
    let a = r - 1;
    while (a >= 0 && known[a] === undefined) a--;
    let b = r + 1;
    while (b < HISTORY && known[b] === undefined) b++;
    if (a < 0) return known[b]!;
    if (b >= HISTORY) return known[a]!;
    return known[a]! + ((known[b]! - known[a]!) * (r - a)) / (b - a);
  });
  return { values, filled: known.filter((v) => v === undefined).length };
}

describe.skipIf(!CSV)("forecasts of the replayed Taylor series, through the daemon", () => {
  const manifest = JSON.parse(readFileSync(MANIFEST, "utf8")) as { id: string; version: string; normalization: { mean: number; std: number } };
  let rows: Row[];
  let session: ort.InferenceSession;
  let broker: Mosquitto;
  let dir: string;
  let daemon: DaemonProcess | undefined;
  let sub: Subscriber | undefined;

  /** The model's prediction for a window of (possibly gap-filled) values ending before row `s`. */
  async function offline(windows: { values: number[]; s: number }[]): Promise<number[][]> {
    const { mean, std } = manifest.normalization;
    const data = new Float32Array(windows.length * HISTORY * 6);
    windows.forEach((w, b) =>
      data.set(
        offlineInput(
          w.values,
          rows.slice(w.s - HISTORY, w.s).map((r) => r.stamp),
          mean,
          std,
        ),
        b * HISTORY * 6,
      ),
    );
    const out = await session.run({ history: new ort.Tensor("float32", data, [windows.length, HISTORY, 6]) });
    const y = out.forecast!.data as Float32Array;
    return windows.map((_, b) => Array.from(y.subarray(b * HORIZON, (b + 1) * HORIZON), (v) => v * std + mean));
  }

  async function runDaemon(csvRows: Row[], backfillRows: number, rowSeconds = 1800): Promise<Subscriber> {
    const csv = path.join(dir, "replay.csv");
    writeFileSync(csv, `timestamp,demand_mw\n${csvRows.map((r) => `${r.stamp},${r.value}`).join("\n")}\n`);
    const cfg = {
      device_id: "taylor-test",
      log_level: "info",
      data_dir: path.join(dir, "data"),
      mqtt: { url: broker.url, reconnect_min_ms: 100, reconnect_max_ms: 1000 },
      outbox: { synchronous: "normal" },
      broker: { enabled: false },
      http: { enabled: false, health_publish_ms: 0 },
      models: [{ id: "demand", manifest: MANIFEST, providers: ["cpu"], variant: "fp32", threads: 1 }],
      // as an operator would set it up: the file's local clock, and the model's own time zone (Europe/London) for the calendar
      meters: [
        {
          id: "taylor",
          driver: "replay",
          file: csv,
          timezone: "Europe/London",
          values: { demand_mw: { column: "demand_mw", unit: "MW" } },
          backfill_s: backfillRows * rowSeconds,
          speed: (SPEED * rowSeconds) / 1800,
        },
      ],
      forecasts: [{ id: "taylor-demand", source: "meter:taylor:demand_mw", model: "demand" }],
    };
    const file = path.join(dir, "cityedge.yaml");
    writeFileSync(file, YAML.stringify(cfg));
    const s = await Subscriber.connect(broker.url, "cityedge/taylor-test/#");
    daemon = DaemonProcess.cli(file).start();
    return s;
  }

  beforeAll(async () => {
    rows = readTaylor(CSV!);
    session = await ort.InferenceSession.create(path.join(REPO_ROOT, "models/demand_lstm/demand.fp32.onnx"), {
      executionProviders: ["cpu"],
      intraOpNumThreads: 1,
    });
    broker = await new Mosquitto().start();
  });
  afterEach(async () => {
    await sub?.close();
    sub = undefined;
    await daemon?.stop();
    daemon = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await session?.release();
    await broker?.stop();
  });

  const forecasts = (msgs: Received[]) => msgs.filter((m) => m.topic === "cityedge/taylor-test/forecasts/taylor-demand");

  it("publishes the model's offline predictions for the same windows, valid against the schema", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-taylor-"));
    // The last weeks of the series (the model's test weeks): 8 days back-filled, then replayed.
    const start = 3360 - HISTORY;
    const given = new Set(Array.from({ length: HISTORY + 200 }, (_, i) => start + i));
    sub = await runDaemon(
      [...given].map((i) => rows[i]!),
      HISTORY,
    );
    await sub.waitFor("5 forecasts", (m) => forecasts(m).length >= 5, 90_000);
    const got = forecasts(sub.messages).slice(0, 5);
    for (const m of got) validateMessage(m.topic, m.payload);
    const readings = sub.messages.filter((m) => m.topic === "cityedge/taylor-test/meters/taylor/readings");
    expect(readings.length).toBeGreaterThan(0);
    validateMessage(readings[0]!.topic, readings[0]!.payload);
    expect(readings[0]!.payload.values).toMatchObject({ demand_mw: { unit: "MW", quality: "good" } });

    const byIso = new Map(rows.map((r, i) => [toIso(r.stamp), i]));
    const windows = got.map((m) => {
      const s = byIso.get(m.payload.issued_at as string);
      expect(s, `issued_at ${String(m.payload.issued_at)} is a row of the series`).toBeDefined();
      return { s: s!, ...expectedWindow(rows, s!, given) };
    });
    const expected = await offline(windows);
    const maxDiff = Math.max(
      ...got.flatMap((m, i) => (m.payload.horizon as { value: number }[]).map((h, k) => Math.abs(h.value - expected[i]![k]!))),
    );
    console.info(
      `[forecastTaylor] ${got.length} forecasts, issued ${got.map((m) => String(m.payload.issued_at)).join(", ")}; largest difference from offline: ${maxDiff} MW`,
    );
    got.forEach((m, i) => {
      const p = m.payload as {
        model: { id: string; version: string };
        horizon: { ts: string; value: number }[];
        window: { filled: number };
        step_s: number;
        unit: string;
      };
      expect(p.model).toMatchObject({ id: manifest.id, version: manifest.version });
      expect(p.step_s).toBe(1800);
      expect(p.unit).toBe("MW");
      expect(p.window.filled).toBe(windows[i]!.filled);
      expect(p.horizon).toHaveLength(HORIZON);
      const s = windows[i]!.s;
      p.horizon.forEach((h, k) => {
        expect(h.ts).toBe(toIso(rows[s + k]!.stamp));
        // Same model, same input tensor, same provider: the same numbers.
        expect(h.value).toBe(expected[i]![k]!);
      });
      // and a day-ahead forecast that is in fact close to what happened
      const mape = p.horizon.reduce((a, h, k) => a + Math.abs(h.value - rows[s + k]!.value) / rows[s + k]!.value, 0) / HORIZON;
      expect(mape).toBeLessThan(0.1);
    });
  });

  it("forecasts an hourly replay hourly through the half-hourly model (its input interpolated, its output added up)", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-taylor-hourly-"));
    const start = 3360 - HISTORY;
    const hourly: Row[] = [];
    for (let i = start; i + 1 < start + HISTORY + 200; i += 2)
      hourly.push({ stamp: rows[i]!.stamp, value: (rows[i]!.value + rows[i + 1]!.value) / 2 });
    sub = await runDaemon(hourly, HISTORY / 2, 3600);
    await sub.waitFor("3 forecasts", (m) => forecasts(m).length >= 3, 90_000);
    const byIso = new Map(hourly.map((r, i) => [toIso(r.stamp), i]));
    for (const m of forecasts(sub.messages).slice(0, 3)) {
      validateMessage(m.topic, m.payload);
      const p = m.payload as {
        step_s: number;
        source_step_s: number;
        model: { id: string };
        horizon: { ts: string; value: number }[];
        window: { steps: number };
        choice: { candidate: string; reason?: string };
      };
      expect(p).toMatchObject({ step_s: 3600, source_step_s: 3600, model: { id: manifest.id }, window: { steps: HISTORY } });
      expect(p.choice.candidate).toBe("model");
      expect(p.choice.reason).toMatch(/^no backtest yet: /);
      expect(p.horizon).toHaveLength(24);
      const h0 = byIso.get(p.horizon[0]!.ts)!;
      expect(h0, "the first step is an hour of the file").toBeDefined();
      const mape = p.horizon.reduce((a, h, k) => a + Math.abs(h.value - hourly[h0 + k]!.value) / hourly[h0 + k]!.value, 0) / 24;
      expect(mape).toBeLessThan(0.05);
    }
  });

  it("fills a missing hour, and skips (with the reason logged) while a missing day is in the window", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-taylor-gaps-"));
    const start = 1000;
    // a missing hour in the back-filled history, and a missing day starting 60 rows (7.5 s of replay) after it ends
    const hourGap = new Set([start + 200, start + 201]);
    const dayFrom = start + HISTORY + 60;
    const given = new Set(
      Array.from({ length: HISTORY + 160 }, (_, i) => start + i).filter((i) => !hourGap.has(i) && (i < dayFrom || i >= dayFrom + HORIZON)),
    );
    sub = await runDaemon(
      [...given].map((i) => rows[i]!),
      HISTORY,
    );
    await sub.waitFor("a forecast", (m) => forecasts(m).length >= 1, 90_000);
    const first = forecasts(sub.messages)[0]!;
    validateMessage(first.topic, first.payload);
    const s = [...rows.keys()].find((i) => toIso(rows[i]!.stamp) === first.payload.issued_at)!;
    expect(s).toBeLessThan(dayFrom);
    const w = expectedWindow(rows, s, given);
    expect(w.filled).toBeGreaterThanOrEqual(2);
    expect((first.payload.window as { filled: number }).filled).toBe(w.filled);
    const [expected] = await offline([{ s, values: w.values }]);
    expect((first.payload.horizon as { value: number }[]).map((h) => h.value)).toEqual(expected);

    await daemon!.waitForLog(/forecast taylor-demand skipped: a gap of 4[78] steps \(2[34]\.\d h\)/, 90_000);
    const line = daemon!.log.split("\n").find((l) => l.includes("skipped: a gap"))!;
    expect(JSON.parse(line)).toMatchObject({ level: "warn", series: "taylor-demand", source: "meter:taylor:demand_mw" });
    // nothing is published for an issue time whose window lacks more than max_gap_steps (6) of the day
    const dayStart = Date.parse(toIso(rows[dayFrom]!.stamp));
    const dayEnd = dayStart + HORIZON * STEP_MS;
    for (const m of forecasts(sub.messages)) {
      const issued = Date.parse(m.payload.issued_at as string);
      const overlap = Math.min(issued, dayEnd) - Math.max(issued - HISTORY * STEP_MS, dayStart);
      expect(overlap / STEP_MS).toBeLessThanOrEqual(6);
    }
  });
});
