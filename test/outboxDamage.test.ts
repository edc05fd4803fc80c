/**
 * A damaged outbox, for real: the real CLI (simulated meters) is SIGKILLed with messages still
 * in its outbox (the uplink was cut), the test damages the SQLite file the way disks and people
 * do (garbage, truncated, a bad WAL, deleted, deleted with the ledger), and the daemon starts
 * again on it. A subscriber on a real mosquitto audits every stream: a seq is never given twice
 * (no "repeat" with another id), what was lost is a gap, and a lost numbering is a new epoch.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
  closeSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import mqtt from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { until } from "./helpers/http.js";
import { freePort, Mosquitto, MOSQUITTO_BIN } from "./helpers/mosquitto.js";
import { auditStream, Subscriber, type Received } from "./helpers/subscriber.js";
import { TcpProxy } from "./helpers/tcpProxy.js";

const METERS = [0, 1].map((i) => ({ id: `m${i}`, driver: "simulated", interval_ms: 1000, speed: 50, seed: i + 1 }));

let broker: Mosquitto;
const cleanups: (() => Promise<void> | void)[] = [];

interface Run {
  base: string;
  dir: string;
  data: string;
  readings: string[];
  sub: Subscriber;
  proxy: TcpProxy;
  httpPort: number;
  config: string;
}

async function setUp(id: string): Promise<Run> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-damage-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const proxy = new TcpProxy(broker.port);
  await proxy.start();
  cleanups.push(() => proxy.stop());
  const base = `cityedge/${id}`;
  const sub = await Subscriber.connect(broker.url, `${base}/#`);
  cleanups.push(() => sub.close());
  const httpPort = await freePort();
  const config = writeMqttConfig(dir, `mqtt://127.0.0.1:${proxy.port}`, {
    device_id: id,
    meters: METERS,
    http: { enabled: true, port: httpPort, health_publish_ms: 1000 },
  });
  return { base, dir, data: path.join(dir, "data"), readings: METERS.map((m) => `${base}/meters/${m.id}/readings`), sub, proxy, httpPort, config };
}

function start(run: Run): DaemonProcess {
  const d = DaemonProcess.cli(run.config).start();
  cleanups.push(() => d.stop());
  return d;
}

/** Runs until readings flow, cuts the uplink so the outbox fills, and SIGKILLs: rows are left in the file and its WAL. */
async function killWithBacklog(run: Run): Promise<void> {
  const d = start(run);
  await run.sub.waitFor("60 readings per meter", (msgs) => run.readings.every((t) => msgs.filter((m) => m.topic === t).length >= 60));
  run.proxy.cut();
  await d.waitForLog(/MQTT connection lost/);
  await new Promise((r) => setTimeout(r, 2000));
  await d.kill("SIGKILL");
  run.proxy.reopen();
}

/** Starts again and waits until every meter's readings flow past what the first run had sent. */
async function restart(run: Run): Promise<{ daemon: DaemonProcess; health: { problems: string[]; outbox?: { epoch?: string } } }> {
  const before = run.readings.map((t) => run.sub.on(t).length);
  const daemon = start(run);
  await run.sub.waitFor("readings again after the restart", (msgs) =>
    run.readings.every((t, i) => msgs.filter((m) => m.topic === t).length > before[i]! + 100),
  );
  const health = await until("a health answer", async () => {
    const res = await fetch(`http://127.0.0.1:${run.httpPort}/healthz`);
    return (await res.json()) as { problems: string[]; outbox?: { epoch?: string } };
  });
  expect(daemon.running).toBe(true);
  expect(daemon.log).not.toMatch(/"level":"fatal"/);
  return { daemon, health };
}

/** No seq given twice with two ids, order kept; returns the audit of each readings topic. */
function audited(run: Run) {
  return run.readings.map((t) => {
    const a = auditStream(run.sub.messages, t);
    expect(a.idMismatches).toEqual([]);
    expect(a.outOfOrder).toEqual([]);
    return a;
  });
}

const maxSeq = (msgs: Received[], topic: string) => Math.max(0, ...msgs.filter((m) => m.topic === topic).map((m) => m.payload.seq as number));

describe.skipIf(!MOSQUITTO_BIN)("a damaged outbox (real CLI, mosquitto)", { timeout: 180_000 }, () => {
  beforeAll(async () => {
    broker = await new Mosquitto().start();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it.each([
    [
      "garbage",
      (file: string) => {
        writeFileSync(file, Buffer.alloc(65536, 0x5a));
        rmSync(`${file}-wal`, { force: true });
        rmSync(`${file}-shm`, { force: true });
      },
    ],
    [
      "truncated",
      (file: string) => {
        // Checkpointed first, so the cut goes through real pages of the tables.
        const size = statSync(file).size + (existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0);
        rmSync(`${file}-wal`, { force: true });
        rmSync(`${file}-shm`, { force: true });
        truncateSync(file, Math.max(4096, Math.floor(Math.min(size, statSync(file).size) / 2)));
      },
    ],
  ])("a %s file is moved aside with a timestamp and reported; a new one starts; seq continues after the high-water marks", async (kind, damage) => {
    const run = await setUp(`dmg-${kind}`);
    await killWithBacklog(run);
    const sentBefore = run.readings.map((t) => maxSeq(run.sub.messages, t));
    damage(path.join(run.data, "outbox.sqlite"));
    const { health } = await restart(run);
    const aside = readdirSync(run.data).filter((f) => /^outbox\.sqlite\.damaged-\d{4}-\d\d-\d\dT/.test(f));
    if (kind === "garbage") expect(aside.length).toBeGreaterThan(0);
    expect(health.problems.some((p) => /outbox is degraded: .*(damaged|does not hold the last \d+ seqs committed to it)/.test(p))).toBe(true);
    const audits = audited(run);
    for (const [i, a] of audits.entries()) {
      expect(a.epochs).toHaveLength(1);
      // What the damaged file held and never delivered is a gap; nothing after it reuses a number.
      const after = run.sub.on(run.readings[i]!).filter((m) => (m.payload.seq as number) > sentBefore[i]!);
      expect(after.length).toBeGreaterThan(100);
      expect(a.gaps.length).toBeGreaterThan(0);
    }
  });

  it("a bad WAL (SQLite drops its frames without a word) is caught against the ledger: reported, and seq continues after the marks", async () => {
    const run = await setUp("dmg-wal");
    await killWithBacklog(run);
    const file = path.join(run.data, "outbox.sqlite");
    expect(statSync(`${file}-wal`).size).toBeGreaterThan(64 * 1024);
    // Garbage from the second frame on: SQLite's recovery keeps only the frames before it.
    const fd = openSync(`${file}-wal`, "r+");
    writeSync(fd, Buffer.alloc(8192, 0xa5), 0, 8192, 32 + (24 + 4096) + 100);
    closeSync(fd);
    const { health } = await restart(run);
    expect(
      health.problems.some((p) =>
        /does not hold the last \d+ seqs committed to it .*or its WAL was; .*seq continues after the high-water marks/.test(p),
      ),
    ).toBe(true);
    for (const a of audited(run)) expect(a.epochs).toHaveLength(1);
  });

  it("a deleted outbox continues every seq and the connection number from the ledger; with the ledger gone too, a new epoch starts at 1", async () => {
    const run = await setUp("dmg-del");
    await killWithBacklog(run);
    const file = path.join(run.data, "outbox.sqlite");
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    const { daemon } = await restart(run);
    const status = () => run.sub.on(`${run.base}/status`).map((m) => m.payload);
    // Connection 1 was the first run; its will (seq 2) came at the kill; the next is 2 (online, seq 3), not 1 again.
    expect(
      status()
        .filter((s) => s.state === "online")
        .map((s) => s.seq),
    ).toEqual([1, 3]);
    for (const a of audited(run)) expect(a.epochs).toHaveLength(1);
    const epoch = run.sub.on(run.readings[0]!)[0]!.payload.epoch;
    await daemon.kill("SIGTERM");
    for (const f of readdirSync(run.data)) if (f.startsWith("outbox.")) rmSync(path.join(run.data, f), { force: true });
    await restart(run);
    const audits = audited(run);
    for (const a of audits) expect(a.epochs).toEqual([epoch, expect.not.stringMatching(String(epoch))]);
    // The new numbering starts at 1: not "repeats" of the old one, since its epoch differs.
    const fresh = run.sub.on(run.readings[0]!).filter((m) => m.payload.epoch !== epoch);
    expect(fresh[0]!.payload.seq).toBe(1);
  });

  it("an outbox that cannot be opened at all: status, health and command answers still reach the cloud; it opens once it can", async () => {
    const run = await setUp("dmg-open");
    mkdirSync(run.data, { recursive: true });
    // A directory where the file should be: SQLite cannot open it, and it is not "damaged" either.
    mkdirSync(path.join(run.data, "outbox.sqlite"));
    const daemon = start(run);
    await run.sub.waitFor("online", (msgs) => msgs.some((m) => m.topic === `${run.base}/status` && m.payload.state === "online"));
    await run.sub.waitFor("a health message saying why", (msgs) =>
      msgs.some((m) => m.topic === `${run.base}/health` && (m.payload.problems as string[]).some((p) => /cannot open the outbox file/.test(p))),
    );
    const pub = await Subscriber.connect(broker.url, `${run.base}/cmd/+/response`);
    cleanups.push(() => pub.close());
    const client = await mqtt.connectAsync(broker.url);
    await client.publishAsync(`${run.base}/cmd/nope`, JSON.stringify({ id: "q-1" }), { qos: 1 });
    await client.endAsync();
    await pub.waitFor("an answer", (msgs) => msgs.some((m) => m.payload.request_id === "q-1"));
    expect(pub.messages[0]!.payload).toMatchObject({ ok: false, error: { code: "unknown_command" } });
    rmSync(path.join(run.data, "outbox.sqlite"), { recursive: true });
    await daemon.waitForLog(/outbox file open again/, 60_000);
    await run.sub.waitFor("readings", (msgs) => run.readings.every((t) => msgs.some((m) => m.topic === t)));
    expect(daemon.running).toBe(true);
    for (const t of [...run.readings, `${run.base}/health`]) expect(auditStream(run.sub.messages, t).idMismatches).toEqual([]);
  });
});
