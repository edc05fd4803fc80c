import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import mqtt from "mqtt";
import pino from "pino";
import { EmbeddedBroker } from "../runtime/broker/embeddedBroker.js";
import { CONFIG_SCHEMA } from "../runtime/config/schema.js";
import { MqttPublisher } from "../runtime/mqtt/publisher.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { Outbox } from "../runtime/outbox/outbox.js";
import type { SyncMode } from "../runtime/outbox/outboxStore.js";
import { freePort, startMosquitto, stopChild } from "./benchProcess.js";
import type { Bench, BenchResult } from "./index.js";

let MESSAGES = 100_000;
const BODY_PAD = 300 - 150; // the envelope and keys take about 150 bytes of the 300

interface Broker {
  port: number;
  kind: string;
  stop(): Promise<void>;
}

/** mosquitto when installed (as in production), else the embedded aedes broker. */
async function startBroker(dir: string): Promise<Broker> {
  // No limit on in-flight messages per client: the bench measures the publishing side.
  const mosquitto = await startMosquitto(dir, ["max_inflight_messages 0"]);
  if (mosquitto) return { port: mosquitto.port, kind: "mosquitto", stop: () => stopChild(mosquitto.child, 2000) };
  const port = await freePort();
  const broker = new EmbeddedBroker({ host: "127.0.0.1", port, log: pino({ level: "silent" }) });
  await broker.start();
  return { port, kind: "aedes (embedded)", stop: () => broker.stop() };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function body(i: number): Record<string, unknown> {
  return { i, pad: "x".repeat(BODY_PAD - String(i).length) };
}

/** Raw MQTT.js needs a window too: its packet ids are 16-bit, so past 65,535 unacknowledged publishes they collide. */
const RAW_WINDOW = 10_000;

/** Raw MQTT.js: QoS 1 publishes of ~300-byte payloads, up to RAW_WINDOW unacknowledged, until every PUBACK is in. */
interface Rate {
  perS: number;
  /** CPU time (user + system) of this process per message: unlike the rate, not skewed by other load on the machine. */
  cpuUsPerMsg: number;
}

function rate(t0: number, cpu0: NodeJS.CpuUsage): Rate {
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { perS: MESSAGES / s, cpuUsPerMsg: (cpu.user + cpu.system) / MESSAGES };
}

async function rawRate(port: number): Promise<Rate> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clean: true, reconnectPeriod: 0 });
  const payload = JSON.stringify({
    v: 1,
    id: "00000000-0000-0000-0000-000000000000",
    device_id: "bench",
    ts: new Date().toISOString(),
    seq: 1,
    ...body(1),
  });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await new Promise<void>((resolve, reject) => {
    let sent = 0;
    let acked = 0;
    let scheduled = false;
    const fill = () => {
      scheduled = false;
      for (let k = 0; k < 1000 && sent < MESSAGES && sent - acked < RAW_WINDOW; k++, sent++) {
        client.publish(`bench/raw/${sent % 4}`, payload, { qos: 1 }, (err) => {
          if (err) return reject(err);
          if (++acked === MESSAGES) return resolve();
          if (!scheduled) {
            scheduled = true;
            setImmediate(fill);
          }
        });
      }
    };
    fill();
  });
  const r = rate(t0, cpu0);
  await client.endAsync();
  return r;
}

function parts(dir: string, port: number, sync: SyncMode, name: string, inflight?: number) {
  const log = pino({ level: "silent" });
  const cfg = CONFIG_SCHEMA.parse({
    device_id: "bench",
    cameras: [],
    models: [],
    meters: [],
    forecasts: [],
    mqtt: { url: `mqtt://127.0.0.1:${port}` },
  });
  const outbox = new Outbox({
    file: path.join(dir, `${name}.sqlite`),
    deviceId: "bench",
    maxRows: cfg.outbox.max_rows,
    maxBytes: cfg.outbox.max_bytes,
    sync,
    log,
  });
  const publisher = new MqttPublisher({
    mqtt: cfg.mqtt,
    deviceId: "bench",
    baseDir: dir,
    topics: new Topics("cityedge", "bench"),
    outbox,
    inflight: inflight ?? cfg.outbox.inflight,
    log,
  });
  return { outbox, publisher };
}

async function until(pred: () => boolean, onTick?: () => void): Promise<void> {
  while (!pred()) {
    onTick?.();
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Through the outbox: publish() 1,000 per tick, committed per tick, drained by the publisher at QoS 1. */
async function outboxRate(dir: string, port: number, sync: SyncMode, inflight: number | undefined, round: number): Promise<Rate> {
  const { outbox, publisher } = parts(dir, port, sync, `rate-${sync}-${inflight ?? "default"}-${round}`, inflight);
  await outbox.start();
  await publisher.start();
  await until(() => publisher.connected);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let i = 0;
  await new Promise<void>((resolve) => {
    const batch = () => {
      for (let k = 0; k < 1000 && i < MESSAGES; k++, i++) outbox.publish(`cityedge/bench/t${i % 4}`, body(i));
      if (i < MESSAGES) setImmediate(batch);
      else resolve();
    };
    batch();
  });
  await until(() => outbox.stats().depth === 0 && outbox.stats().pending === 0);
  const r = rate(t0, cpu0);
  await publisher.stop();
  await outbox.stop();
  return r;
}

/** 100,000 messages queued during an outage, then the uplink comes back: time to empty, RSS on the way. */
async function drain(dir: string, port: number): Promise<{ seconds: number; rssBeforeMb: number; rssMaxMb: number }> {
  const { outbox, publisher } = parts(dir, port, "full", "drain");
  await outbox.start();
  for (let i = 0; i < MESSAGES; i++) outbox.publish(`cityedge/bench/t${i % 4}`, body(i));
  outbox.flush();
  global.gc?.();
  const rssBefore = process.memoryUsage.rss();
  let rssMax = rssBefore;
  const t0 = performance.now();
  await publisher.start();
  await until(
    () => outbox.stats().depth === 0,
    () => (rssMax = Math.max(rssMax, process.memoryUsage.rss())),
  );
  const seconds = (performance.now() - t0) / 1000;
  await publisher.stop();
  await outbox.stop();
  return { seconds, rssBeforeMb: rssBefore / 2 ** 20, rssMaxMb: rssMax / 2 ** 20 };
}

/** `cityedge bench mqtt [--messages=N]` (default 100,000). */
export const mqttBench: Bench = async (args) => {
  const n = Number(args.find((a) => a.startsWith("--messages="))?.slice(11) ?? 100_000);
  if (!Number.isInteger(n) || n < 1000) throw new Error(`bench mqtt: --messages must be an integer >= 1000, got ${n}`);
  MESSAGES = n;
  const rounds = Number(args.find((a) => a.startsWith("--rounds="))?.slice(9) ?? 3);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`bench mqtt: --rounds must be a positive integer, got ${rounds}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-bench-mqtt-"));
  const broker = await startBroker(dir);
  try {
    const step = (what: string) => process.stderr.write(`bench mqtt: ${what}\n`);
    // The drain first, so its RSS is not inflated by the heaps of the rate runs.
    step(`drain of ${MESSAGES} queued messages`);
    const d = await drain(dir, broker.port);
    // Rounds alternate raw and outbox runs, so a busy neighbour on a shared machine hits both; medians are reported.
    const raws: Rate[] = [];
    const fulls: Rate[] = [];
    const normals: Rate[] = [];
    for (let r = 1; r <= rounds; r++) {
      step(`round ${r}/${rounds}: raw MQTT.js QoS 1 to ${broker.kind}`);
      raws.push(await rawRate(broker.port));
      step(`round ${r}/${rounds}: outbox, synchronous=full`);
      fulls.push(await outboxRate(dir, broker.port, "full", undefined, r));
      step(`round ${r}/${rounds}: outbox, synchronous=normal`);
      normals.push(await outboxRate(dir, broker.port, "normal", undefined, r));
    }
    const raw = median(raws.map((r) => r.perS));
    const full = median(fulls.map((r) => r.perS));
    const normal = median(normals.map((r) => r.perS));
    const rawCpu = median(raws.map((r) => r.cpuUsPerMsg));
    const fullCpu = median(fulls.map((r) => r.cpuUsPerMsg));
    const normalCpu = median(normals.map((r) => r.cpuUsPerMsg));

    const result: BenchResult = {
      name: "mqtt",
      figures: {
        broker: broker.kind,
        messages: MESSAGES,
        message_bytes: Buffer.byteLength(
          JSON.stringify({
            v: 1,
            id: "00000000-0000-0000-0000-000000000000",
            device_id: "bench",
            ts: new Date().toISOString(),
            seq: MESSAGES / 2,
            ...body(MESSAGES / 2),
          }),
        ),
        raw_window: RAW_WINDOW,
        raw_mqttjs_qos1_msgs_per_s: Math.round(raw),
        outbox_sync_full_msgs_per_s: Math.round(full),
        outbox_sync_normal_msgs_per_s: Math.round(normal),
        rounds,
        raw_all_rounds: raws.map((r) => Math.round(r.perS)).join(" "),
        outbox_full_all_rounds: fulls.map((r) => Math.round(r.perS)).join(" "),
        raw_cpu_us_per_msg: Number(rawCpu.toFixed(1)),
        outbox_full_cpu_us_per_msg: Number(fullCpu.toFixed(1)),
        outbox_normal_cpu_us_per_msg: Number(normalCpu.toFixed(1)),
        outbox_full_vs_raw_by_cpu: Number((rawCpu / fullCpu).toFixed(2)),
        load_average_1m: Number(os.loadavg()[0]!.toFixed(1)),
        outbox_full_vs_raw: Number((full / raw).toFixed(2)),
        outbox_normal_vs_raw: Number((normal / raw).toFixed(2)),
        drain_100k_s: Number(d.seconds.toFixed(2)),
        drain_rss_before_mb: Math.round(d.rssBeforeMb),
        drain_rss_max_mb: Math.round(d.rssMaxMb),
      },
    };
    return [result];
  } finally {
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};
