/**
 * The delivery promise against real processes: a mosquitto broker the test starts and kills, a
 * TCP proxy that cuts the uplink, and the daemon in its own process (killed with SIGKILL).
 * Each test uses its own device id, so retained status from one test never leaks into another.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { OutboxStore } from "../runtime/outbox/outboxStore.js";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { Mosquitto, MOSQUITTO_BIN } from "./helpers/mosquitto.js";
import { validateEnvelope, validateMessage } from "./helpers/schemas.js";
import { assertNoGaps, Subscriber, type Received } from "./helpers/subscriber.js";
import { TcpProxy } from "./helpers/tcpProxy.js";

let broker: Mosquitto;
const cleanups: (() => Promise<void> | void)[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-delivery-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function track<T extends { stop(): Promise<void> } | { close(): Promise<void> }>(x: T): T {
  cleanups.push(() => ("stop" in x ? x.stop() : x.close()));
  return x;
}

/** The topics of one device in these tests: the test ticker's, or with `meters` those of simulated meters m0..m2. */
function device(id: string, source: "ticker" | "meters" = "ticker") {
  const base = `cityedge/${id}`;
  const topics = [0, 1, 2].map((i) => (source === "ticker" ? `${base}/test/t${i}` : `${base}/meters/m${i}/readings`));
  return { id, base, status: `${base}/status`, topics };
}

/** Three simulated meters at 50 readings/s each: real readings through the real CLI. */
const METERS = [0, 1, 2].map((i) => ({ id: `m${i}`, driver: "simulated", interval_ms: 1000, speed: 50, seed: i + 1 }));
type Device = ReturnType<typeof device>;

const maxSeq = (msgs: Received[], topic: string) => Math.max(0, ...msgs.filter((m) => m.topic === topic).map((m) => m.payload.seq as number));
const minMax = (msgs: Received[], d: Device) => Math.min(...d.topics.map((t) => maxSeq(msgs, t)));
const statuses = (msgs: Received[], d: Device) =>
  msgs.filter((m) => m.topic === d.status).map((m) => `${String(m.payload.state)}#${String(m.payload.seq)}`);
const hasStatus =
  (d: Device, state: string, minSeq = 0) =>
  (msgs: Received[]) =>
    msgs.some((m) => m.topic === d.status && m.payload.state === state && (m.payload.seq as number) >= minSeq);

/** Every message validates against its schema; every topic has seq 1..max with no gap, in order. Returns the duplicates. */
function checkStream(msgs: Received[], d: Device): number {
  for (const m of msgs) {
    if (m.topic.includes("/test/")) validateEnvelope(m.topic, m.payload);
    else validateMessage(m.topic, m.payload);
  }
  let dups = 0;
  for (const t of d.topics) dups += assertNoGaps(msgs, t, 1, maxSeq(msgs, t));
  return dups;
}

/** SIGTERM: exit 0, `stopped` delivered, outbox empty, and the subscriber saw every seq the outbox gave out. */
async function stopAndDrain(daemon: DaemonProcess, sub: Subscriber, d: Device, dataDir: string): Promise<void> {
  expect(daemon.log).not.toMatch(/"level":60/);
  expect(await daemon.kill("SIGTERM")).toBe(0);
  await sub.waitFor("status stopped", hasStatus(d, "stopped"));
  const store = new OutboxStore(path.join(dataDir, "outbox.sqlite"), "normal");
  try {
    expect(store.rows).toBe(0);
    const seqs = store.seqs();
    for (const t of d.topics) expect(seqs.get(t)).toBe(maxSeq(sub.messages, t));
  } finally {
    store.close();
  }
}

// Generous: these run real processes on a shared 2-core machine; nothing here is a speed test.
describe.skipIf(!MOSQUITTO_BIN)("durable MQTT delivery (mosquitto, daemon process)", { timeout: 240_000 }, () => {
  beforeAll(async () => {
    broker = await new Mosquitto().start();
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  afterAll(async () => {
    await broker?.stop();
  });

  it("loses nothing when the uplink is cut for more than 10 s (real CLI, simulated meters)", async () => {
    const d = device("cut-1", "meters");
    const dir = tempDir();
    const proxy = track(new TcpProxy(broker.port));
    await proxy.start();
    const sub = track(await Subscriber.connect(broker.url, `${d.base}/#`));
    const daemon = track(DaemonProcess.cli(writeMqttConfig(dir, `mqtt://127.0.0.1:${proxy.port}`, { device_id: d.id, meters: METERS })).start());
    await sub.waitFor("20 messages per topic", (msgs) => minMax(msgs, d) >= 20);
    proxy.cut();
    await daemon.waitForLog(/MQTT connection lost/);
    const atCut = Math.max(...d.topics.map((t) => maxSeq(sub.messages, t)));
    // The outage itself is what is tested: at least 10 s of publishing with no uplink.
    await new Promise((r) => setTimeout(r, 10_500));
    const beforeReopen = sub.messages.length;
    proxy.reopen();
    await sub.waitFor("online again after the cut", hasStatus(d, "online", 3));
    await sub.waitFor("the backlog", (msgs) => minMax(msgs, d) >= atCut + 300, 60_000);
    // What was published during the cut (50 readings/s per meter for 10 s) arrived after it.
    for (const t of d.topics) expect(sub.messages.slice(beforeReopen).filter((m) => m.topic === t).length).toBeGreaterThan(300);
    await stopAndDrain(daemon, sub, d, path.join(dir, "data"));
    checkStream(sub.messages, d);
    // The proxy reset the link: the broker delivered the will; the reconnect said online again.
    expect(statuses(sub.messages, d)).toEqual(["online#1", "offline#2", "online#3", "stopped#4"]);
  });

  it("loses nothing through a silent 10 s partition, found by keep-alive (real CLI, simulated meters)", async () => {
    const d = device("silent-1", "meters");
    const dir = tempDir();
    const proxy = track(new TcpProxy(broker.port));
    await proxy.start();
    const sub = track(await Subscriber.connect(broker.url, `${d.base}/#`));
    const config = writeMqttConfig(dir, `mqtt://127.0.0.1:${proxy.port}`, { device_id: d.id, meters: METERS, mqtt: { keepalive_s: 5 } });
    const daemon = track(DaemonProcess.cli(config).start());
    await sub.waitFor("20 messages per topic", (msgs) => minMax(msgs, d) >= 20);
    const from = daemon.log.length;
    const cutAt = Date.now();
    proxy.blackhole();
    // Nobody is told: the daemon finds out by an unanswered keep-alive.
    await daemon.waitForLog(/MQTT connection lost/, 60_000, from);
    await new Promise((r) => setTimeout(r, Math.max(0, 10_500 - (Date.now() - cutAt))));
    const atHeal = Math.max(...d.topics.map((t) => maxSeq(sub.messages, t)));
    proxy.reopen();
    await sub.waitFor("online again", hasStatus(d, "online", 3));
    await sub.waitFor("the backlog", (msgs) => minMax(msgs, d) >= atHeal + 200, 60_000);
    await stopAndDrain(daemon, sub, d, path.join(dir, "data"));
    checkStream(sub.messages, d);
  });

  it("reconnects by itself after the broker is SIGKILLed and restarted, and re-sends what was not acknowledged", async () => {
    const d = device("bk-1");
    const dir = tempDir();
    const own = track(new Mosquitto());
    await own.start();
    // The daemon reaches the broker through a proxy that stays shut until the subscriber is back
    // on the restarted broker: a restarted broker keeps nothing for an absent subscriber.
    const proxy = track(new TcpProxy(own.port));
    await proxy.start();
    const sub = track(await Subscriber.connect(own.url, `${d.base}/#`, { reconnectPeriod: 100 }));
    const daemon = track(DaemonProcess.ticker(writeMqttConfig(dir, `mqtt://127.0.0.1:${proxy.port}`, { device_id: d.id }), 3, 10).start());
    await sub.waitFor("30 messages per topic", (msgs) => minMax(msgs, d) >= 30);
    const connects = sub.connects;
    // Freeze it first so that messages are in flight, unacknowledged, when it dies.
    own.pause();
    await new Promise((r) => setTimeout(r, 1500));
    await own.kill("SIGKILL");
    await daemon.waitForLog(/MQTT connection lost/);
    proxy.cut();
    const atKill = Math.max(...d.topics.map((t) => maxSeq(sub.messages, t)));
    await own.start();
    await sub.resubscribed(connects);
    proxy.reopen();
    await sub.waitFor("online again on the restarted broker", hasStatus(d, "online", 3));
    await sub.waitFor("publishing resumed", (msgs) => minMax(msgs, d) >= atKill + 100);
    // A new subscriber gets the retained status: online (the restarted broker had lost it).
    const late = track(await Subscriber.connect(own.url, d.status));
    await late.waitFor("retained status", (msgs) => msgs.length > 0);
    expect(late.messages[0]).toMatchObject({ retain: true, payload: { state: "online" } });
    await stopAndDrain(daemon, sub, d, path.join(dir, "data"));
    checkStream(sub.messages, d);
    // The will died with the broker; the status seq shows the missing connection end.
    expect(statuses(sub.messages, d)).toEqual(["online#1", "online#3", "stopped#4"]);
  });

  it("continues seq after the daemon is SIGKILLed mid-stream: nothing missing, duplicates keep their id (real CLI, simulated meters)", async () => {
    const d = device("kill-1", "meters");
    const dir = tempDir();
    const config = writeMqttConfig(dir, broker.url, { device_id: d.id, meters: METERS });
    const sub = track(await Subscriber.connect(broker.url, `${d.base}/#`));
    const first = track(DaemonProcess.cli(config).start());
    await sub.waitFor("100 messages per topic", (msgs) => minMax(msgs, d) >= 100);
    await first.kill("SIGKILL");
    await sub.waitFor("the will: offline", hasStatus(d, "offline"));
    const atKill = Math.max(...d.topics.map((t) => maxSeq(sub.messages, t)));
    const second = track(DaemonProcess.cli(config).start());
    await sub.waitFor("the stream going on past the kill", (msgs) => minMax(msgs, d) >= atKill + 100);
    await stopAndDrain(second, sub, d, path.join(dir, "data"));
    checkStream(sub.messages, d);
    expect(statuses(sub.messages, d)).toEqual(["online#1", "offline#2", "online#3", "stopped#4"]);
  });

  it("drops the oldest past the quota during a long outage, reports the count, keeps memory bounded and keeps running", async () => {
    const d = device("quota-1");
    const dir = tempDir();
    const proxy = track(new TcpProxy(broker.port));
    await proxy.start();
    proxy.cut();
    const sub = track(await Subscriber.connect(broker.url, `${d.base}/#`));
    const config = writeMqttConfig(dir, `mqtt://127.0.0.1:${proxy.port}`, {
      device_id: d.id,
      outbox: { max_rows: 1000 },
      http: { enabled: false, health_publish_ms: 1000 },
    });
    // 3 topics x 50 messages every 10 ms into a 1,000-row outbox with no uplink.
    const daemon = track(DaemonProcess.ticker(config, 3, 10, 50).start());
    await daemon.waitForLog(/outbox quota exceeded/);
    // Measured from the first drop report (10 s in, tens of thousands dropped), once every part
    // has started and loaded its modules: the daemon's start-up is not what this bounds.
    await daemon.waitForLog(/"dropped_total":\d{5,}/, 60_000);
    const rssEarly = daemon.rss();
    await daemon.waitForLog(/"dropped_total":([3-9]\d{5}|\d{7,})/, 120_000);
    const rssLate = daemon.rss();
    expect(daemon.running).toBe(true);
    // Another 200,000 messages of ~300 bytes went through a 1,000-row outbox: memory did not follow them.
    expect(rssLate - rssEarly).toBeLessThan(64 * 1024 * 1024);
    // Pause the stream so that the drain below is not racing new drops.
    const from = daemon.log.length;
    process.kill(daemon.pid!, "SIGUSR2");
    await daemon.waitForLog(/ticker paused/, 30_000, from);
    proxy.reopen();
    await sub.waitFor("online", hasStatus(d, "online"));
    // The health topic reports the drops to the cloud.
    const healthTopic = `${d.base}/health`;
    const reported = (m: Received) => ((m.payload.outbox as { dropped?: number } | undefined)?.dropped ?? 0) >= 200_000;
    await sub.waitFor("a health report with the drop count", (msgs) => msgs.some((m) => m.topic === healthTopic && reported(m)));
    for (const m of sub.on(healthTopic)) validateMessage(m.topic, m.payload);
    expect(await daemon.kill("SIGTERM")).toBe(0);
    await sub.waitFor("status stopped", hasStatus(d, "stopped"));
    const store = new OutboxStore(path.join(dir, "data", "outbox.sqlite"), "normal");
    const dropped = store.counter("dropped");
    const topics = [...d.topics, healthTopic];
    const lastSeq = topics.map((t) => store.seqs().get(t) ?? 0);
    expect(store.rows).toBe(0);
    store.close();
    // Per topic the oldest were dropped: what arrived is one unbroken run ending at the last seq,
    // and every message that never arrived is in the drop count.
    let missing = 0;
    topics.forEach((t, i) => {
      const firstSeen = Math.min(...sub.on(t).map((m) => m.payload.seq as number));
      assertNoGaps(sub.messages, t, firstSeen, lastSeq[i]!);
      missing += firstSeen - 1;
    });
    expect(dropped).toBeGreaterThan(200_000);
    // "Dropped" is "removed without an acknowledgement": a health report committed just after the
    // reconnect can push out a message already in flight, which then arrives anyway. Never fewer.
    expect(dropped).toBeGreaterThanOrEqual(missing);
    expect(dropped - missing).toBeLessThanOrEqual(3);
    expect(daemon.log).toMatch(/outbox quota exceeded; oldest messages dropped/);
  });
});
