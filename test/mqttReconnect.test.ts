/**
 * The uplink's reconnects against a real mosquitto that is killed and started again on the same
 * port: no reconnect comes sooner than `reconnect_min_ms`, and once the broker accepts
 * connections again the publisher is back without waiting out its backoff (it knocks on the
 * broker's port, as cameras do on theirs).
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CONFIG_SCHEMA } from "../runtime/config/schema.js";
import { MqttPublisher } from "../runtime/mqtt/publisher.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { Outbox } from "../runtime/outbox/outbox.js";
import { Mosquitto, MOSQUITTO_BIN } from "./helpers/mosquitto.js";

let dir: string;
const cleanups: (() => Promise<void>)[] = [];

interface LogLine {
  msg: string;
  retry_in_ms?: number;
  time: number;
}

async function rig(deviceId: string, broker: Mosquitto, mqtt: Record<string, unknown>) {
  const lines: LogLine[] = [];
  const log = pino({ level: "debug", timestamp: () => `,"time":${Date.now()}` }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  const cfg = CONFIG_SCHEMA.parse({ device_id: deviceId, mqtt: { url: broker.url, ...mqtt } });
  const outbox = new Outbox({ file: path.join(dir, `${deviceId}.sqlite`), deviceId, maxRows: 1000, maxBytes: 1e8, sync: "normal", log });
  const publisher = new MqttPublisher({
    mqtt: cfg.mqtt,
    deviceId,
    baseDir: dir,
    topics: new Topics("cityedge", deviceId),
    outbox,
    inflight: 16,
    log,
  });
  cleanups.push(async () => {
    await publisher.stop();
    await outbox.stop();
  });
  await outbox.start();
  await publisher.start();
  return { publisher, lines };
}

async function until(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!MOSQUITTO_BIN)("MQTT reconnects (mosquitto killed and restarted on its port)", { timeout: 60_000 }, () => {
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-reconnect-"));
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("never reconnects sooner than reconnect_min_ms, the first reconnect included", async () => {
    const broker = await new Mosquitto().start();
    cleanups.push(() => broker.stop());
    const { publisher, lines } = await rig("min-1", broker, { reconnect_min_ms: 300, reconnect_max_ms: 1000 });
    await until("connected", () => publisher.connected);
    await broker.kill("SIGKILL");
    // Several failures in a row while the broker is down: each delay is at least the minimum.
    await until("five retries", () => lines.filter((l) => l.retry_in_ms !== undefined).length >= 5);
    const delays = lines.filter((l) => l.retry_in_ms !== undefined).map((l) => l.retry_in_ms!);
    expect(delays.length).toBeGreaterThanOrEqual(5);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(300);
    for (const d of delays) expect(d).toBeLessThanOrEqual(1000);
    await broker.start();
    await until("connected again", () => publisher.connected);
  });

  it("resumes as soon as the broker accepts connections again, before its backoff's next attempt", async () => {
    const broker = await new Mosquitto().start();
    cleanups.push(() => broker.stop());
    // A long first delay: without the knock, the first reconnect would come 8..16 s after the loss.
    const { publisher, lines } = await rig("knock-1", broker, { reconnect_min_ms: 8000, reconnect_max_ms: 30000 });
    await until("connected", () => publisher.connected);
    expect(publisher.attempts).toBe(1);
    await broker.kill("SIGKILL");
    await until("the loss", () => lines.some((l) => l.msg.startsWith("MQTT connection lost")));
    const lost = lines.find((l) => l.msg.startsWith("MQTT connection lost"))!;
    expect(lost.retry_in_ms).toBeGreaterThanOrEqual(8000);
    // Down long enough for a knock to be refused, then back on the same port.
    await new Promise((r) => setTimeout(r, 1200));
    expect(publisher.connected).toBe(false);
    expect(publisher.attempts).toBe(1);
    await broker.start();
    await until("connected again", () => publisher.connected, 20_000);
    // Back on the second attempt, the one the knock started: the backoff's timer never fired.
    expect(publisher.attempts).toBe(2);
    const back = lines.find((l) => l.msg === "broker accepts connections again; reconnecting now");
    expect(back).toBeDefined();
    const connected = lines.filter((l) => l.msg === "MQTT connected").at(-1)!;
    expect(connected.time).toBeLessThan(lost.time + lost.retry_in_ms!);
    expect(lines.indexOf(back!)).toBeLessThan(lines.indexOf(connected));
  });
});
