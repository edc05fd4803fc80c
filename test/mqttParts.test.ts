import net from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { CONFIG_SCHEMA } from "../runtime/config/schema.js";
import { Daemon } from "../runtime/daemon.js";
import { SecretScrubber } from "../runtime/log/logger.js";
import { EmbeddedBroker } from "../runtime/broker/embeddedBroker.js";
import { Backoff } from "../runtime/supervise/backoff.js";
import { explainConnectError } from "../runtime/mqtt/clientOptions.js";
import { buildMqtt } from "../runtime/mqtt/index.js";
import { matches } from "../runtime/mqtt/publisher.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { validateMessage } from "./helpers/schemas.js";
import { Subscriber } from "./helpers/subscriber.js";

const log = pino({ level: "silent" });
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("Backoff", () => {
  it("doubles from the minimum, stays under the cap, jitters within the upper half, and resets", () => {
    const lo = new Backoff({ initial_ms: 100, max_ms: 1000, jitter: "equal", random: () => 0 });
    expect([lo.next(), lo.next(), lo.next(), lo.next(), lo.next(), lo.next()]).toEqual([50, 100, 200, 400, 500, 500]);
    const hi = new Backoff({ initial_ms: 100, max_ms: 1000, jitter: "equal", random: () => 1 });
    expect([hi.next(), hi.next(), hi.next(), hi.next(), hi.next()]).toEqual([100, 200, 400, 800, 1000]);
    hi.reset();
    expect(hi.next()).toBe(100);
    // "above": never shorter than the minimum (the uplink's first reconnect waits reconnect_min_ms), never past the cap.
    const above = (r: number) => new Backoff({ initial_ms: 100, max_ms: 1000, jitter: "above", random: () => r });
    const series = (b: Backoff) => [b.next(), b.next(), b.next(), b.next(), b.next()];
    expect(series(above(0))).toEqual([100, 200, 400, 800, 1000]);
    expect(series(above(1))).toEqual([200, 400, 800, 1000, 1000]);
    expect(() => new Backoff({ initial_ms: 0, max_ms: 10 })).toThrow("backoff: need 0 < initial <= max, got initial 0 ms, max 10 ms");
  });
});

describe("topic filters", () => {
  it("matches + and # like a broker", () => {
    expect(matches("a/+/cmd/+", "a/dev/cmd/reload")).toBe(true);
    expect(matches("a/+/cmd/+", "a/dev/cmd/reload/response")).toBe(false);
    expect(matches("a/#", "a/b/c")).toBe(true);
    expect(matches("a/b", "a/b/c")).toBe(false);
  });

  it("refuses wildcards and slashes in ids", () => {
    expect(() => new Topics("cityedge", "dev/1")).toThrow('device_id "dev/1" must not contain "+", "#", "/" or NUL');
    expect(() => new Topics("cityedge", "d").readings("m+")).toThrow('meter id "m+" must not contain');
  });
});

describe("connect error hints", () => {
  it("names the setting to check", () => {
    expect(
      explainConnectError(Object.assign(new Error("self-signed certificate in certificate chain"), { code: "SELF_SIGNED_CERT_IN_CHAIN" })),
    ).toMatch(/not trusted by mqtt\.tls\.ca/);
    expect(explainConnectError(new Error("error:0A00045C:SSL routines::tlsv13 alert certificate required"))).toMatch(
      /refused our client certificate/,
    );
    expect(explainConnectError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }))).toMatch(
      /is the broker running/,
    );
    expect(explainConnectError(new Error("Connection refused: Not authorized"))).toMatch(/mqtt\.username \/ mqtt\.password/);
  });
});

async function occupiedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

describe("embedded broker", () => {
  it("says clearly when its port is in use", async () => {
    const port = await occupiedPort();
    const b = new EmbeddedBroker({ host: "127.0.0.1", port, log });
    await expect(b.start()).rejects.toThrow(
      `embedded broker: 127.0.0.1:${port} is already in use (another broker running?); set broker.port or broker.enabled: false`,
    );
    expect(b.health()).toMatchObject({ state: "failed" });
  });

  it("runs in the daemon and carries its messages; a port in use fails only the broker part", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-embedded-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const free = await occupiedPort();
    // Free that port again and give it to the broker: a port that was just bindable.
    await cleanups.pop()!();
    const run = async (port: number) => {
      const config = CONFIG_SCHEMA.parse({
        device_id: "emb-1",
        data_dir: dir,
        mqtt: { url: `mqtt://127.0.0.1:${port}`, reconnect_min_ms: 100, reconnect_max_ms: 1000 },
        broker: { enabled: true, host: "127.0.0.1", port },
        http: { enabled: false, health_publish_ms: 0 },
        outbox: { synchronous: "normal" },
        cameras: [],
        models: [],
        meters: [],
        forecasts: [],
      });
      const daemon = new Daemon({
        configFile: path.join(dir, "x.yaml"),
        loaded: { config, file: path.join(dir, "x.yaml"), baseDir: dir, secrets: [] },
        log,
        scrubber: new SecretScrubber(),
        buildParts: (ctx) => {
          const m = buildMqtt(ctx);
          return [
            ...m.parts,
            { name: "probe", start: async () => m.outbox.publish(`${ctx.topics.base}/test/probe`, { ok: true }), stop: async () => undefined },
          ];
        },
      });
      cleanups.push(() => daemon.stop());
      await daemon.start();
      return daemon;
    };
    const ok = await run(free);
    const sub = await Subscriber.connect(`mqtt://127.0.0.1:${free}`, "cityedge/#");
    cleanups.push(() => sub.close());
    await sub.waitFor("retained online from the embedded broker", (msgs) =>
      msgs.some((m) => m.topic === "cityedge/emb-1/status" && m.payload.state === "online"),
    );
    validateMessage("cityedge/emb-1/status", sub.on("cityedge/emb-1/status")[0]!.payload);
    expect(ok.health().broker).toMatchObject({ state: "running" });

    const busy = await occupiedPort();
    const failing = await run(busy);
    const h = failing.health();
    // Failed to start: contained, reported, and retried by the restart policy.
    expect(h.broker).toMatchObject({
      state: "retrying",
      error: expect.stringContaining(`127.0.0.1:${busy} is already in use`),
      supervisor: { restarts: 1, retry_at: expect.any(String) },
    });
    expect(h.outbox?.state).toBe("running");
    expect(h.probe?.state).toBe("running");
  });
});
