import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../runtime/config/load.js";
import { Daemon } from "../runtime/daemon.js";
import type { PartContext } from "../runtime/part.js";
import { createRootLogger, redactUrl, SecretScrubber } from "../runtime/log/logger.js";
import type { Part, PartHealth, PartSignals } from "../runtime/part.js";
import { RestartPolicy } from "../runtime/supervise/restartPolicy.js";

function capture(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

class FakePart implements Part {
  readonly name: string;
  readonly events: string[];
  /** How many of the next starts fail (Infinity: all of them). */
  failures: number;
  signals: PartSignals | undefined;

  constructor(name: string, events: string[], fail: boolean | number = false) {
    this.name = name;
    this.events = events;
    this.failures = fail === true ? Infinity : fail === false ? 0 : fail;
  }

  async start(signals?: PartSignals): Promise<void> {
    this.events.push(`start ${this.name}`);
    this.signals = signals;
    if (this.failures > 0) {
      this.failures--;
      throw new Error(`${this.name} cannot open /dev/nothing`);
    }
  }

  async stop(): Promise<void> {
    this.events.push(`stop ${this.name}`);
  }
}

function setup(buildParts: (ctx: PartContext) => Part[], config = "device_id: d1\ndata_dir: ./data\n", onFatal?: (err: Error) => void) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-daemon-"));
  const file = path.join(dir, "c.yaml");
  writeFileSync(file, config);
  const out = capture();
  const scrubber = new SecretScrubber();
  const log = createRootLogger({ level: "debug", destination: out.stream, scrubber });
  const daemon = new Daemon({ configFile: file, loaded: loadConfig(file, {}), log, scrubber, env: {}, buildParts, ...(onFatal ? { onFatal } : {}) });
  return { daemon, out, file, dir, log };
}

/** The delay until a retrying part's next start, from its health. */
function retryIn(h: PartHealth | undefined): number {
  const at = (h?.supervisor as { retry_at?: string } | undefined)?.retry_at;
  if (at === undefined) throw new Error(`no retry_at in ${JSON.stringify(h)}`);
  return Date.parse(at) - Date.now();
}

describe("the composition root", () => {
  it("contains a part that fails to start: the others run, it is stopped (to release what it got), health reports the failure and its next retry", async () => {
    const events: string[] = [];
    const { daemon, out } = setup(() => [new FakePart("a", events), new FakePart("b", events, true), new FakePart("c", events)]);
    const t0 = Date.now();
    await daemon.start();
    expect(events).toEqual(["start a", "start b", "stop b", "start c"]);
    const h = daemon.health();
    expect(h).toEqual({
      a: { state: "running" },
      b: { state: "retrying", error: "b cannot open /dev/nothing", supervisor: { restarts: 1, recent_failures: 1, retry_at: expect.any(String) } },
      c: { state: "running" },
    });
    // supervision.initial_ms (1000) with ±20% jitter.
    const at = Date.parse((h.b!.supervisor as { retry_at: string }).retry_at);
    expect(at - t0).toBeGreaterThanOrEqual(800);
    expect(at - Date.now()).toBeLessThanOrEqual(1200);
    const failure = out.lines().find((l) => l.part === "b" && l.msg === "part failed to start; the others keep running");
    expect((failure?.err as { stack?: string }).stack).toContain("cannot open /dev/nothing");
    await daemon.stop();
    // b was stopped right after its failed start; it holds nothing more to stop.
    expect(events.slice(4)).toEqual(["stop c", "stop a"]);
  });

  it("gives every part factory its logger, topics, metrics and data directory", async () => {
    let seen: PartContext | undefined;
    const { daemon } = setup((ctx) => {
      seen = ctx;
      return [];
    });
    await daemon.start();
    expect(seen?.topics.status()).toBe("cityedge/d1/status");
    expect(seen?.dataDir).toMatch(/data$/);
    expect(seen?.metrics).toBe(daemon.metrics);
    await daemon.stop();
  });

  it("reload applies a valid file and rebuilds the parts; an invalid one keeps everything running", async () => {
    const events: string[] = [];
    const { daemon, file, out } = setup((ctx) => [new FakePart(`p-${ctx.config.device_id}`, events)]);
    await daemon.start();
    writeFileSync(file, "device_id: d1\nlog_level: loud\n");
    expect(await daemon.reload()).toMatchObject({ outcome: "rejected", problems: [expect.stringContaining("log_level: must be one of")] });
    expect(daemon.config.device_id).toBe("d1");
    expect(events).toEqual(["start p-d1"]);
    expect(out.lines().some((l) => String(l.msg).includes("log_level: must be one of"))).toBe(true);

    writeFileSync(file, "device_id: d2\ndata_dir: ./data\n");
    expect(await daemon.reload()).toMatchObject({ outcome: "applied", stopped: ["p-d1"], started: ["p-d2"], restarted: [], kept: [] });
    expect(daemon.config.device_id).toBe("d2");
    expect(events).toEqual(["start p-d1", "stop p-d1", "start p-d2"]);
    await daemon.stop();
  });
});

describe("supervision (fake timers)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const POLICY = "supervision:\n  initial_ms: 1000\n  max_ms: 8000\n  max_restarts: 3\n  window_ms: 600000\n  reset_after_ms: 60000\n";

  it("retries a failed start with doubling delays, reports failed past max_restarts in the window, keeps retrying at the cap, and recovers", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
    const events: string[] = [];
    const flaky = new FakePart("flaky", events, 5);
    const { daemon, out } = setup(() => [flaky], `device_id: d1\ndata_dir: ./data\n${POLICY}`);
    await daemon.start();
    const delays: number[] = [];
    const states: string[] = [];
    for (let attempt = 2; attempt <= 6; attempt++) {
      const h = daemon.health().flaky;
      states.push(h!.state);
      const wait = retryIn(h);
      delays.push(wait);
      await vi.advanceTimersByTimeAsync(wait - 1);
      expect(events.filter((e) => e === "start flaky")).toHaveLength(attempt - 1);
      await vi.advanceTimersByTimeAsync(1);
      expect(events.filter((e) => e === "start flaky")).toHaveLength(attempt);
    }
    // 1 s, 2 s, 4 s with ±20% jitter; then past 3 restarts in the window, failed and at the 8 s cap.
    const bounds = [1000, 2000, 4000];
    bounds.forEach((d, i) => {
      expect(delays[i]).toBeGreaterThanOrEqual(d * 0.8);
      expect(delays[i]).toBeLessThanOrEqual(d * 1.2);
    });
    expect(delays.slice(3)).toEqual([8000, 8000]);
    expect(states).toEqual(["retrying", "retrying", "retrying", "failed", "failed"]);
    expect(daemon.health().flaky).toEqual({ state: "running", supervisor: { restarts: 5, recent_failures: 5 } });
    expect(out.lines().filter((l) => l.msg === "part keeps failing; marked failed, still retried at the longest delay")).toHaveLength(2);
    expect(out.lines().some((l) => l.msg === "part restarted" && l.part === "flaky")).toBe(true);
    await daemon.stop();
  });

  it("restarts a part that dies after it started: stopped at once, started again after the policy's delay", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
    const events: string[] = [];
    const part = new FakePart("worker", events);
    const { daemon } = setup(() => [part], `device_id: d1\ndata_dir: ./data\n${POLICY}`);
    await daemon.start();
    await vi.advanceTimersByTimeAsync(5000);
    part.signals!.died(new Error("worker thread exited with code 1"));
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual(["start worker", "stop worker"]);
    const h = daemon.health().worker;
    expect(h).toMatchObject({ state: "retrying", error: "worker thread exited with code 1" });
    await vi.advanceTimersByTimeAsync(retryIn(h));
    expect(events).toEqual(["start worker", "stop worker", "start worker"]);
    expect(daemon.health().worker!.state).toBe("running");
    // A second death long after (it ran past reset_after_ms) starts from the first delay again.
    await vi.advanceTimersByTimeAsync(120_000);
    part.signals!.died(new Error("again"));
    await vi.advanceTimersByTimeAsync(0);
    expect(retryIn(daemon.health().worker)).toBeLessThanOrEqual(1200);
    // A death reported by an earlier life of the part changes nothing.
    const stale = part.signals!;
    await vi.advanceTimersByTimeAsync(2000);
    expect(daemon.health().worker!.state).toBe("running");
    await daemon.stop();
    stale.died(new Error("late"));
    expect(daemon.health()).toEqual({});
  });
});

describe("restart policy", () => {
  it("doubles to the cap, gives up past max_restarts within the window, and forgets failures outside it", () => {
    const p = new RestartPolicy(
      { initial_ms: 100, max_ms: 1000, reset_after_ms: 10_000, max_restarts: 2, window_ms: 5000 },
      { jitter: 0.2, random: () => 0.5 },
    );
    expect([p.failure(0), p.failure(100), p.failure(300)]).toEqual([
      { delayMs: 100, givenUp: false },
      { delayMs: 200, givenUp: false },
      { delayMs: 1000, givenUp: true },
    ]);
    expect(p.retryAt).toBe(1300);
    // The first two failures leave the window: no longer given up, the backoff goes on where it was.
    expect(p.failure(5200)).toEqual({ delayMs: 400, givenUp: false });
    expect(p.recentFailures).toBe(2);
    // A run of reset_after_ms was a recovery.
    expect(p.failure(20_000, 10_000)).toEqual({ delayMs: 100, givenUp: false });
    expect(p.restarts).toBe(5);
  });
});

describe("reload by difference", () => {
  /** Three parts with identities: a (mqtt), b (outbox, holds a), c (http); and d when the config has a camera. */
  function wiring(events: string[], failing = new Set<string>()) {
    return (ctx: PartContext): Part[] => {
      const a = ctx.part(new FakePart("a", events), { slice: ctx.config.mqtt });
      const b = ctx.part(new FakePart("b", events), { slice: ctx.config.outbox, deps: [a] });
      const c = ctx.part(new FakePart("c", events), { slice: ctx.config.http });
      const parts = [a, b, c];
      for (const cam of ctx.config.cameras) parts.push(ctx.part(new FakePart(`cam-${cam.id}`, events, failing.has(cam.id)), { slice: cam }));
      return parts;
    };
  }
  const BASE = "device_id: d1\ndata_dir: ./data\n";

  it("restarts only the parts whose slice changed and those holding them; log_level applies in place; a dry run changes nothing", async () => {
    const events: string[] = [];
    const { daemon, file, log } = setup(wiring(events), BASE);
    await daemon.start();
    const started = events.splice(0);
    expect(started).toEqual(["start a", "start b", "start c"]);

    writeFileSync(file, `${BASE}outbox:\n  max_rows: 5000\n`);
    expect(await daemon.reload({ dryRun: true })).toMatchObject({ outcome: "planned", restarted: ["b"], kept: ["a", "c"] });
    expect(events).toEqual([]);
    expect(await daemon.reload()).toMatchObject({ outcome: "applied", restarted: ["b"], started: [], stopped: [], kept: ["a", "c"], in_place: [] });
    expect(events.splice(0)).toEqual(["stop b", "start b"]);

    writeFileSync(file, `${BASE}outbox:\n  max_rows: 5000\nmqtt:\n  keepalive_s: 20\n`);
    expect(await daemon.reload()).toMatchObject({ outcome: "applied", restarted: ["a", "b"], kept: ["c"] });
    expect(events.splice(0)).toEqual(["stop b", "stop a", "start a", "start b"]);

    writeFileSync(file, `${BASE}outbox:\n  max_rows: 5000\nmqtt:\n  keepalive_s: 20\nlog_level: warn\n`);
    expect(await daemon.reload()).toMatchObject({ outcome: "applied", restarted: [], kept: ["a", "b", "c"], in_place: ["log_level"] });
    expect(events).toEqual([]);
    expect(log.level).toBe("warn");
    expect(daemon.lastReload).toMatchObject({ outcome: "applied", in_place: ["log_level"], at: expect.any(String) });

    // A camera added is started; removed, stopped; nothing else moves.
    writeFileSync(file, `${BASE}outbox:\n  max_rows: 5000\nmqtt:\n  keepalive_s: 20\ncameras:\n  - id: gate\n    url: rtsp://10.0.0.9/s\n`);
    expect(await daemon.reload()).toMatchObject({ outcome: "applied", started: ["cam-gate"], restarted: [], stopped: [] });
    writeFileSync(file, `${BASE}outbox:\n  max_rows: 5000\nmqtt:\n  keepalive_s: 20\n`);
    expect(await daemon.reload()).toMatchObject({ outcome: "applied", stopped: ["cam-gate"], started: [], restarted: [] });
    expect(events).toEqual(["start cam-gate", "stop cam-gate"]);
    await daemon.stop();
  });

  it("rolls a reload whose new part fails to start back to the running config, and says so", async () => {
    const events: string[] = [];
    const { daemon, file } = setup(wiring(events, new Set(["broken"])), BASE);
    await daemon.start();
    events.splice(0);
    writeFileSync(file, `${BASE}http:\n  port: 9200\ncameras:\n  - id: broken\n    url: rtsp://10.0.0.9/s\n`);
    const result = await daemon.reload();
    expect(result).toEqual({
      outcome: "rolled_back",
      config: file,
      failed: [{ part: "cam-broken", error: "cam-broken cannot open /dev/nothing" }],
      restarted: ["c"],
      started: ["cam-broken"],
      stopped: [],
      kept: ["a", "b"],
      in_place: [],
    });
    // c (http) went to the new config and back; a and b never moved.
    expect(events).toEqual(["stop c", "start c", "start cam-broken", "stop cam-broken", "stop c", "start c"]);
    expect(daemon.config.http.port).toBe(9108);
    expect(Object.keys(daemon.health())).toEqual(["a", "b", "c"]);
    expect(Object.values(daemon.health()).map((h) => h.state)).toEqual(["running", "running", "running"]);
    expect(daemon.lastReload).toMatchObject({ outcome: "rolled_back", failed: [{ part: "cam-broken" }] });
    await daemon.stop();
  });

  it("exits through onFatal when the previous config cannot be brought back after a failed reload", async () => {
    const events: string[] = [];
    let fatal: Error | undefined;
    // c starts once (the first config) and never again.
    let cStarts = 0;
    const build = (ctx: PartContext): Part[] => {
      const c = new FakePart("c", events);
      const start = c.start.bind(c);
      c.start = async (signals) => {
        if (++cStarts > 1) throw new Error("port 9108 taken meanwhile");
        return start(signals);
      };
      return [ctx.part(c, { slice: ctx.config.http })];
    };
    const { daemon, file } = setup(build, BASE, (err) => (fatal = err));
    await daemon.start();
    writeFileSync(file, `${BASE}http:\n  port: 9200\n`);
    expect(await daemon.reload()).toMatchObject({ outcome: "rolled_back", failed: [{ part: "c", error: "port 9108 taken meanwhile" }] });
    expect(fatal?.message).toBe("config reload rolled back, but c (port 9108 taken meanwhile) could not be started again");
    await daemon.stop();
  });

  it("rejects a config whose data_dir cannot be made (under a regular file) and changes nothing", async () => {
    const events: string[] = [];
    const { daemon, file, dir } = setup(wiring(events), BASE);
    await daemon.start();
    events.splice(0);
    writeFileSync(path.join(dir, "plain"), "not a folder\n");
    writeFileSync(file, "device_id: d1\ndata_dir: ./plain/data\n");
    const result = await daemon.reload();
    expect(result).toEqual({
      outcome: "rejected",
      config: file,
      problems: [
        `${file}: data_dir: cannot create ${path.join(dir, "plain/data")}: ENOTDIR: not a directory, mkdir '${path.join(dir, "plain/data")}'`,
      ],
    });
    expect(events).toEqual([]);
    expect(Object.values(daemon.health()).map((h) => h.state)).toEqual(["running", "running", "running"]);
    expect(daemon.lastReload).toMatchObject({ outcome: "rejected" });
    await daemon.stop();
  });
});

describe("log redaction", () => {
  it("redacts credentials in URLs", () => {
    expect(redactUrl("rtsp://admin:pa55@10.1.2.3:554/s")).toBe("rtsp://admin:[redacted]@10.1.2.3:554/s");
    expect(redactUrl("https://tok3n@host/x and mqtts://u:p@b:8883")).toBe("https://[redacted]@host/x and mqtts://u:[redacted]@b:8883");
    expect(redactUrl("rtsp://10.1.2.3/s")).toBe("rtsp://10.1.2.3/s");
  });

  it("never writes secrets: secret keys, registered values, and URL passwords in messages and errors", () => {
    const out = capture();
    const scrubber = new SecretScrubber();
    scrubber.setSecrets(["Sup3rSecret"]);
    const log = createRootLogger({ level: "info", destination: out.stream, scrubber });
    log.info({ mqtt: { password: "pw-in-object" }, token: "tok-value" }, "connecting");
    log.info({ url: "rtsp://admin:camPass@cam/1" }, "camera rtsp://admin:camPass@cam/1 up");
    log.warn("broker said Sup3rSecret is wrong");
    log.error({ err: new Error("auth failed for rtsp://u:errPass@x/ with Sup3rSecret") }, "failed");
    const text = out
      .lines()
      .map((l) => JSON.stringify(l))
      .join("\n");
    for (const s of ["pw-in-object", "tok-value", "camPass", "Sup3rSecret", "errPass"]) expect(text).not.toContain(s);
    expect(text).toContain("[redacted]");
    expect(out.lines()).toHaveLength(4);
  });
});
