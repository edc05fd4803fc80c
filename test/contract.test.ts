/**
 * The contract module: the generated JSON Schemas and AsyncAPI document are current, and for
 * every message the zod schema and the generated JSON Schema agree on valid and invalid payloads
 * (each invalid case is a constraint the hand-written schemas had, so the generated ones are at
 * least as strict), and the typed publish puts a body on its topic with its version.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { COMMAND_NAMES } from "../runtime/config/sections/commands.js";
import { COMMAND_PARAMS, commandRequestSchema, MESSAGES, statusMessage, type ContractMessage, type MessageName } from "../runtime/contract/index.js";
import { contractFiles } from "../runtime/contract/generate.js";
import type { MessageSink } from "../runtime/mqtt/sink.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { commandRequestValidator, SCHEMA_DIR, validateMessage } from "./helpers/schemas.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

const CONTRACT_DIR = path.join(REPO_ROOT, "runtime/contract");
const T = "2026-03-01T12:00:00.000Z";
const envelope = (v = 1) => ({
  v,
  id: "3b241101-e2bb-4255-8caf-4136c566a962",
  device_id: "dev-1",
  ts: T,
  epoch: "20260301T120000Z-0a1b2c3d",
  seq: 7,
});

/** A valid body of every message: what its producer really sends. */
const BODIES: Record<MessageName, Record<string, unknown>> = {
  status: { state: "online", connection: 3 },
  health: {
    state: "degraded",
    version: "0.1.0",
    uptime_s: 12,
    rss_bytes: 123_456_789,
    event_loop_lag_ms: { p50_ms: 0.4, p99_ms: 3.2, max_ms: 9 },
    outbox: { depth: 2, bytes: 800, dropped: 0, disk_full: false, free_bytes: 1048576, oldest_age_s: 4.2, epoch: "20260301T120000Z-0a1b2c3d" },
    mqtt: { state: "running", connected: true },
    cameras: { gate: { state: "running", fps: 9.8 } },
    meters: { m1: { state: "failed", error: "connect ECONNREFUSED" } },
    models: {},
    forecasts: { load: { state: "degraded", error: "model lstm (step 30 min) cannot serve a 1 d series", candidate: "holt_winters", skipped: 0 } },
    parts: {
      outbox: { state: "running", depth: 2 },
      http: {
        state: "retrying",
        error: "http: cannot listen on 127.0.0.1:9108: EADDRINUSE",
        supervisor: { restarts: 2, recent_failures: 2, retry_at: T },
      },
    },
    problems: ["meter m1 is failed: connect ECONNREFUSED", "http is retrying: http: cannot listen on 127.0.0.1:9108: EADDRINUSE"],
    last_reload: {
      at: T,
      outcome: "rolled_back",
      config: "/etc/cityedge/config.yaml",
      failed: [{ part: "http", error: "http: cannot listen on 127.0.0.1:9200: EADDRINUSE" }],
      restarted: ["http"],
      started: [],
      stopped: [],
      kept: ["outbox", "mqtt"],
      in_place: [],
    },
  },
  detections: {
    camera_id: "gate-3",
    model: "vehicles",
    frame: 41,
    frame_ts: T,
    pts_ms: 4100,
    width: 1280,
    height: 720,
    inference_ms: 12.5,
    objects: [{ label: "car", class_id: 2, score: 0.91, box: [0.1, 0.2, 0.3, 0.4], track_id: 5 }],
  },
  counts: {
    camera_id: "gate-3",
    interval_start: T,
    interval_end: "2026-03-01T12:01:00.000Z",
    frames: 600,
    lines: [{ line_id: "stop-line", counts: { car: { in: 4, out: 1 } } }],
    zones: [{ zone_id: "box", entered: { car: 2 }, present: { car: 1 } }],
    road: { vehicles_present: 1.5, vehicles_now: 2, flow_per_min: 5, mean_speed: 0.02, congestion: "light" },
  },
  readings: {
    meter_id: "main",
    measured_at: T,
    quality: "partial",
    values: { power_w: { value: -120.5, unit: "W", quality: "good" }, energy_kwh: { value: null, unit: "kWh", quality: "timeout" } },
    error: "energy_kwh: timeout",
  },
  forecasts: {
    series_id: "load",
    source: "meter:main:power_w",
    model: { id: "lstm", version: "1.0.0", variant: "fp32", provider: "cpu" },
    issued_at: T,
    step_s: 900,
    source_step_s: 1,
    aggregate: "mean",
    unit: "W",
    horizon: [{ ts: T, value: 101.5, p10: 90.25, p50: 101, p90: 112.75 }],
    window: { from: "2026-02-28T12:00:00.000Z", steps: 96, filled: 0 },
    choice: {
      candidate: "holt_winters",
      chosen_at: T,
      backtest: {
        from: "2026-02-14T12:00:00.000Z",
        to: T,
        days: 14,
        origins: 1249,
        mae: 4.5,
        mape: 3.25,
        naive: { seasonal_naive_day: { mae: 9, mape: 7.5 }, seasonal_naive_week: { mae: 6, mape: 5 } },
        candidates: [
          { name: "seasonal_naive_day", mae: 9, mape: 7.5 },
          { name: "holt_winters", mae: 4.5, mape: 3.25 },
          { name: "model", mae: null, mape: null, unavailable: "needs 384 steps of history before the first origin, has 200" },
        ],
      },
    },
  },
  "cmd-response": { request_id: "r1", command: "snapshot", ok: true, result: { camera: "gate-3", width: 640 } },
};

// Mutations reach into nested payloads of every shape; typing each path would say nothing more.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return -- the mutation tables reach into `Loose` payloads */
type Mutation = [what: string, change: (m: Loose) => void];

/** Payloads each schema must refuse: one per constraint of the hand-written schemas, and more. */
const INVALID: Record<MessageName, Mutation[]> = {
  status: [
    ["unknown state", (m) => (m.state = "sleeping")],
    ["connection 0", (m) => (m.connection = 0)],
  ],
  health: [
    ["state other than ok/degraded", (m) => (m.state = "fine")],
    ["a part state outside the list", (m) => (m.cameras.gate.state = "sleeping")],
    ["a part without a state", (m) => delete m.parts.outbox.state],
    ["negative uptime", (m) => (m.uptime_s = -1)],
    ["fractional rss", (m) => (m.rss_bytes = 1.5)],
    ["lag without p99", (m) => delete m.event_loop_lag_ms.p99_ms],
    ["negative lag", (m) => (m.event_loop_lag_ms.max_ms = -1)],
    ["negative outbox depth", (m) => (m.outbox.depth = -1)],
    ["outbox without disk_full", (m) => delete m.outbox.disk_full],
    ["negative free bytes", (m) => (m.outbox.free_bytes = -1)],
    ["negative oldest age", (m) => (m.outbox.oldest_age_s = -1)],
    ["problems not strings", (m) => (m.problems = [1])],
    ["no parts", (m) => delete m.parts],
    ["a supervisor without restarts", (m) => delete m.parts.http.supervisor.restarts],
    ["retry_at without milliseconds", (m) => (m.parts.http.supervisor.retry_at = "2026-03-01T12:00:00Z")],
    ["an unknown reload outcome", (m) => (m.last_reload.outcome = "partly")],
    ["a reload failure without its part", (m) => delete m.last_reload.failed[0].part],
  ],
  detections: [
    ["camera id with a slash", (m) => (m.camera_id = "a/b")],
    ["empty model", (m) => (m.model = "")],
    ["negative frame", (m) => (m.frame = -1)],
    ["frame_ts without milliseconds", (m) => (m.frame_ts = "2026-03-01T12:00:00Z")],
    ["fractional pts", (m) => (m.pts_ms = 1.5)],
    ["width 0", (m) => (m.width = 0)],
    ["negative inference time", (m) => (m.inference_ms = -1)],
    ["score above 1", (m) => (m.objects[0].score = 1.2)],
    ["box of three numbers", (m) => (m.objects[0].box = [0.1, 0.2, 0.3])],
    ["box outside 0..1", (m) => (m.objects[0].box = [0.1, 0.2, 1.3, 0.4])],
    ["track id 0", (m) => (m.objects[0].track_id = 0)],
    ["empty label", (m) => (m.objects[0].label = "")],
    ["unknown object field", (m) => (m.objects[0].colour = "red")],
    ["no objects", (m) => delete m.objects],
  ],
  counts: [
    ["negative frames", (m) => (m.frames = -1)],
    ["interval_end not ISO", (m) => (m.interval_end = "yesterday")],
    ["a count without out", (m) => delete m.lines[0].counts.car.out],
    ["a negative count", (m) => (m.lines[0].counts.car.in = -1)],
    ["unknown line field", (m) => (m.lines[0].id = "x")],
    ["zone without present", (m) => delete m.zones[0].present],
    ["fractional zone count", (m) => (m.zones[0].entered.car = 0.5)],
    ["unknown congestion", (m) => (m.road.congestion = "jammed")],
    ["negative flow", (m) => (m.road.flow_per_min = -1)],
    ["road without mean_speed", (m) => delete m.road.mean_speed],
    ["unknown road field", (m) => (m.road.speed_kmh = 30)],
  ],
  readings: [
    ["no values", (m) => (m.values = {})],
    ["a value name with capitals", (m) => (m.values.PowerW = m.values.power_w)],
    ["unknown value quality", (m) => (m.values.power_w.quality = "meh")],
    ["a value without a unit", (m) => delete m.values.power_w.unit],
    ["a string value", (m) => (m.values.power_w.value = "12")],
    ["unknown reading quality", (m) => (m.quality = "ok")],
    ["measured_at in local time", (m) => (m.measured_at = "2026-03-01T13:00:00.000+01:00")],
    ["unknown value field", (m) => (m.values.power_w.raw = 1)],
  ],
  forecasts: [
    ["empty horizon", (m) => (m.horizon = [])],
    ["a horizon value that is not a number", (m) => (m.horizon[0].value = null)],
    ["unknown source kind", (m) => (m.source = "sensor:x:y")],
    ["step_s 0", (m) => (m.step_s = 0)],
    ["unknown aggregate", (m) => (m.aggregate = "max")],
    ["model without version", (m) => delete m.model.version],
    ["window without filled", (m) => delete m.window.filled],
    ["window of 0 steps", (m) => (m.window.steps = 0)],
    ["no unit", (m) => delete m.unit],
    ["no choice", (m) => delete m.choice],
    ["an unknown candidate", (m) => (m.choice.candidate = "prophet")],
    ["a p10 that is not a number", (m) => (m.horizon[0].p10 = "90")],
    ["an unknown horizon field", (m) => (m.horizon[0].p95 = 120)],
    ["a backtest without its MAE", (m) => delete m.choice.backtest.mae],
    ["a backtest of 0 origins", (m) => (m.choice.backtest.origins = 0)],
    ["no source_step_s", (m) => delete m.source_step_s],
  ],
  "cmd-response": [
    ["ok without result", (m) => delete m.result],
    ["ok with an error", (m) => (m.error = { code: "failed", message: "x" })],
    ["not ok, without an error", (m) => (m.ok = false)],
    ["request_id a number", (m) => (m.request_id = 1)],
  ],
};

const COMMON_INVALID: Mutation[] = [
  ["another version", (m) => (m.v = m.v + 1)],
  ["no seq", (m) => delete m.seq],
  ["seq 0", (m) => (m.seq = 0)],
  ["no epoch", (m) => delete m.epoch],
  ["an epoch with a space", (m) => (m.epoch = "a b")],
  ["an empty id", (m) => (m.id = "")],
  ["ts without milliseconds", (m) => (m.ts = "2026-03-01T12:00:00Z")],
  ["a device id with a space", (m) => (m.device_id = "dev 1")],
  ["an undeclared field", (m) => (m.extra = 1)],
];
/* eslint-enable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return */

const topics = new Topics("cityedge", "dev-1");
const message = (spec: ContractMessage): Loose => structuredClone({ ...envelope(spec.v), ...BODIES[spec.name] });
/** Whether the generated JSON Schema accepts a payload on the topic of the message's valid body. */
const ajvAccepts = (spec: ContractMessage, payload: unknown): boolean => {
  const topic = spec.topic(topics, BODIES[spec.name] as never);
  try {
    validateMessage(topic, payload);
    return true;
  } catch (err) {
    if (!/does not match/.test((err as Error).message)) throw err;
    return false;
  }
};

describe("generated contract files", () => {
  it("runtime/contract/schemas and asyncapi.yaml are exactly what the contract module generates", () => {
    // Regenerate with: node --import tsx runtime/cli.ts contract --write runtime/contract
    const files = contractFiles();
    const stale = files.filter(
      (f) => !existsSync(path.join(CONTRACT_DIR, f.path)) || readFileSync(path.join(CONTRACT_DIR, f.path), "utf8") !== f.text,
    );
    expect(stale.map((f) => f.path)).toEqual([]);
    const generated = new Set(files.map((f) => path.basename(f.path)));
    expect(readdirSync(SCHEMA_DIR).filter((f) => !generated.has(f))).toEqual([]);
  });

  it("has one schema file per message, the envelope's and the commands'", () => {
    const names = contractFiles()
      .filter((f) => f.path.startsWith("schemas/"))
      .map((f) => path.basename(f.path, ".schema.json"));
    expect(names.sort()).toEqual([...MESSAGES.map((m) => m.name), "cmd", "envelope"].sort());
  });
});

describe.each(MESSAGES.map((m) => [m.name, m] as const))("message %s", (_name, spec) => {
  it("a real body with its envelope passes both the zod schema and the generated JSON Schema", () => {
    const m = message(spec);
    expect(spec.schema.safeParse(m).error?.issues).toBeUndefined();
    expect(() => validateMessage(spec.topic(topics, m as never), m)).not.toThrow();
    expect(spec.body.safeParse(BODIES[spec.name]).success).toBe(true);
  });

  it.each([...INVALID[spec.name], ...COMMON_INVALID])("refuses %s, in zod and in JSON Schema alike", (_what, change) => {
    const m = message(spec);
    change(m);
    expect(spec.schema.safeParse(m).success).toBe(false);
    expect(ajvAccepts(spec, m)).toBe(false);
  });

  it("its typed publish puts the body on its topic with its version, retain flag and urgency", () => {
    const sent: { topic: string; body: unknown; opts: unknown }[] = [];
    const sink: MessageSink = { publish: (topic, body, opts) => void sent.push({ topic, body, opts }) };
    spec.publish(sink, topics, BODIES[spec.name] as never);
    expect(sent).toEqual([
      {
        topic: spec.topic(topics, BODIES[spec.name] as never),
        body: BODIES[spec.name],
        opts: { v: spec.v, retain: spec.retain, ...(spec.urgent ? { urgent: true } : {}) },
      },
    ]);
    // Health and command answers must reach the cloud even while the outbox cannot commit.
    expect(spec.urgent).toBe(spec.name === "health" || spec.name === "cmd-response");
    expect(sent[0]!.topic.startsWith(`${topics.base}/`)).toBe(true);
  });
});

describe("status and commands", () => {
  it("statusMessage makes a whole status message that validates", () => {
    const text = statusMessage({ id: "x-1", device_id: "dev-1", ts: T, epoch: "e-1", seq: 5 }, { state: "offline", connection: 3 });
    const m = JSON.parse(text) as Record<string, unknown>;
    expect(m).toEqual({ v: 1, id: "x-1", device_id: "dev-1", ts: T, epoch: "e-1", seq: 5, state: "offline", connection: 3 });
    expect(() => validateMessage(topics.status(), m)).not.toThrow();
  });

  const REQUESTS: Record<(typeof COMMAND_NAMES)[number], { ok: Record<string, unknown>; bad: Record<string, unknown>[] }> = {
    reload_config: { ok: { id: "r1", ts: T }, bad: [{ id: "r1", force: true }] },
    update_model: {
      ok: { id: "r2", model: "vehicles", url: "https://models.example/v.onnx", sha256: "a".repeat(64), variant: "int8" },
      bad: [
        { id: "r2", model: "vehicles", url: "ftp://x/v.onnx", sha256: "a".repeat(64) },
        { id: "r2", model: "vehicles", url: "https://x/v.onnx", sha256: "abc" },
        { id: "r2", model: "vehicles", url: "https://x/v.onnx", sha256: "a".repeat(64), variant: "int4" },
        { id: "r2", url: "https://x/v.onnx", sha256: "a".repeat(64) },
      ],
    },
    snapshot: {
      ok: { id: "r3", camera: "gate-3", quality: 50, boxes: true },
      bad: [{ id: "r3", camera: "gate-3", quality: 5 }, { id: "r3" }, { id: "r3", camera: "gate-3", boxes: "yes" }],
    },
    restart_pipeline: {
      ok: { id: "r4", camera: "gate-3" },
      bad: [
        { id: "r4", camera: "" },
        { id: "r4", camera: "x", now: 1 },
      ],
    },
  };

  it.each(COMMAND_NAMES.map((n) => [n]))("%s: the handler's parameters and cmd.schema.json agree", (name) => {
    const validate = commandRequestValidator(name);
    const { ok, bad } = REQUESTS[name];
    expect(validate(ok)).toBe(true);
    expect(commandRequestSchema(name).safeParse(ok).success).toBe(true);
    const { id: _id, v: _v, ts: _ts, device_id: _d, seq: _s, ...params } = ok;
    expect(COMMAND_PARAMS[name].safeParse(params).success).toBe(true);
    for (const b of bad) {
      expect(validate(b), JSON.stringify(b)).toBe(false);
      expect(commandRequestSchema(name).safeParse(b).success, JSON.stringify(b)).toBe(false);
    }
    expect(validate({ ...ok, id: "x".repeat(129) })).toBe(false);
  });
});

describe("producers emit typed events; only the outbox feed publishes", () => {
  const sources = (dir: string): string[] =>
    readdirSync(path.join(REPO_ROOT, dir), { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts"))
      .map((f) => path.join(dir, f));

  it("no file of runtime/ or drivers/ hands a body to a sink or the outbox itself, or taps topic strings", () => {
    const allowed = new Set(["runtime/contract/message.ts"]);
    const offenders: string[] = [];
    for (const file of [...sources("runtime"), ...sources("drivers")]) {
      if (allowed.has(file)) continue;
      const text = readFileSync(path.join(REPO_ROOT, file), "utf8");
      if (/\b(sink|outbox)\??\.publish\(/.test(text) || /topics\.(counts|detections|readings|forecast)\(/.test(text)) offenders.push(file);
    }
    expect(offenders).toEqual([]);
  });
});
