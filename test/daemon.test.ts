import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../runtime/config/load.js";
import { Daemon } from "../runtime/daemon.js";
import type { PartContext } from "../runtime/part.js";
import { createRootLogger, redactUrl, SecretScrubber } from "../runtime/log/logger.js";
import type { Part } from "../runtime/part.js";

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
  readonly #fail: boolean;

  constructor(name: string, events: string[], fail = false) {
    this.name = name;
    this.events = events;
    this.#fail = fail;
  }

  async start(): Promise<void> {
    this.events.push(`start ${this.name}`);
    if (this.#fail) throw new Error(`${this.name} cannot open /dev/nothing`);
  }

  async stop(): Promise<void> {
    this.events.push(`stop ${this.name}`);
  }
}

function setup(buildParts: (ctx: PartContext) => Part[]) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-daemon-"));
  const file = path.join(dir, "c.yaml");
  writeFileSync(file, "device_id: d1\ndata_dir: ./data\n");
  const out = capture();
  const scrubber = new SecretScrubber();
  const log = createRootLogger({ level: "debug", destination: out.stream, scrubber });
  const daemon = new Daemon({ configFile: file, loaded: loadConfig(file, {}), log, scrubber, env: {}, buildParts });
  return { daemon, out, file };
}

describe("the composition root", () => {
  it("contains a part that fails to start: the others run, health reports the failure", async () => {
    const events: string[] = [];
    const { daemon, out } = setup(() => [new FakePart("a", events), new FakePart("b", events, true), new FakePart("c", events)]);
    await daemon.start();
    expect(events).toEqual(["start a", "start b", "start c"]);
    expect(daemon.health()).toEqual({
      a: { state: "running" },
      b: { state: "failed", error: "b cannot open /dev/nothing" },
      c: { state: "running" },
    });
    const failure = out.lines().find((l) => l.part === "b");
    expect(failure?.msg).toBe("part failed to start; the others keep running");
    expect((failure?.err as { stack?: string }).stack).toContain("cannot open /dev/nothing");
    await daemon.stop();
    expect(events.slice(3)).toEqual(["stop c", "stop b", "stop a"]);
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
    expect(await daemon.reload()).toBe(false);
    expect(daemon.config.device_id).toBe("d1");
    expect(events).toEqual(["start p-d1"]);
    expect(out.lines().some((l) => String(l.msg).includes("log_level: must be one of"))).toBe(true);

    writeFileSync(file, "device_id: d2\ndata_dir: ./data\n");
    expect(await daemon.reload()).toBe(true);
    expect(daemon.config.device_id).toBe("d2");
    expect(events).toEqual(["start p-d1", "stop p-d1", "start p-d2"]);
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
