/** TLS and mutual TLS against a real mosquitto, with certificates made by openssl for the test. */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CONFIG_SCHEMA, type Config } from "../runtime/config/schema.js";
import { MqttPublisher } from "../runtime/mqtt/publisher.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { Outbox } from "../runtime/outbox/outbox.js";
import { makeCerts, type TestCerts } from "./helpers/certs.js";
import { Mosquitto, MOSQUITTO_BIN } from "./helpers/mosquitto.js";
import { validateEnvelope, validateMessage } from "./helpers/schemas.js";
import { Subscriber } from "./helpers/subscriber.js";

let dir: string;
let certs: TestCerts;
let broker: Mosquitto;
const cleanups: (() => Promise<void>)[] = [];

interface Rig {
  publisher: MqttPublisher;
  outbox: Outbox;
  logs: string[];
  /** Resolves when a log line matches. */
  waitLog(re: RegExp, timeoutMs?: number): Promise<string>;
}

async function rig(deviceId: string, mqtt: Record<string, unknown>): Promise<Rig> {
  const logs: string[] = [];
  const log = pino({ level: "debug" }, { write: (s: string) => void logs.push(s) });
  const cfg: Config = CONFIG_SCHEMA.parse({
    device_id: deviceId,
    cameras: [],
    models: [],
    meters: [],
    forecasts: [],
    mqtt: { reconnect_min_ms: 100, reconnect_max_ms: 1000, ...mqtt },
  });
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
  return {
    publisher,
    outbox,
    logs,
    async waitLog(re, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = logs.find((l) => re.test(l));
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no log line matched ${re} within ${timeoutMs} ms:\n${logs.join("")}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

describe.skipIf(!MOSQUITTO_BIN)("MQTT over TLS and mutual TLS (mosquitto)", () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-tls-"));
    certs = makeCerts(dir);
    broker = await new Mosquitto({
      tls: { cafile: certs.ca, certfile: certs.serverCert, keyfile: certs.serverKey, requireCertificate: true },
    }).start();
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  afterAll(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([4, 5])("publishes over mutual TLS with MQTT protocol %i", async (protocolVersion) => {
    const id = `tls-ok-${protocolVersion}`;
    const sub = await Subscriber.connect(broker.url, `cityedge/${id}/#`, {
      ca: [await readPem(certs.ca)],
      cert: await readPem(certs.clientCert),
      key: await readPem(certs.clientKey),
    });
    cleanups.push(() => sub.close());
    const r = await rig(id, {
      url: broker.url,
      protocol_version: protocolVersion,
      tls: { ca: path.basename(certs.ca), cert: certs.clientCert, key: certs.clientKey },
    });
    r.outbox.publish(`cityedge/${id}/test/tls`, { hello: "over TLS" });
    await sub.waitFor(
      "status and the message",
      (msgs) => msgs.some((m) => m.topic.endsWith("/test/tls")) && msgs.some((m) => m.topic.endsWith("/status")),
    );
    for (const m of sub.messages) {
      if (m.topic.endsWith("/status")) validateMessage(m.topic, m.payload);
      else validateEnvelope(m.topic, m.payload);
    }
    expect(r.publisher.health()).toMatchObject({ state: "running", connected: true });
  });

  it("refuses a broker whose certificate the configured CA did not sign, with a clear error, and keeps refusing", async () => {
    const r = await rig("tls-wrong-ca", { url: broker.url, tls: { ca: certs.otherCa, cert: certs.clientCert, key: certs.clientKey } });
    await r.waitLog(/MQTT connect failed/);
    const line = await r.waitLog(/"attempt":2/);
    expect(line).toContain("the broker's certificate is not trusted by mqtt.tls.ca");
    expect(r.publisher.health()).toMatchObject({ state: "degraded", connected: false });
    expect(String(r.publisher.health().error)).toMatch(/not trusted by mqtt\.tls\.ca/);
    expect(r.logs.join("")).not.toContain("MQTT connected");
  });

  it("is refused without a client certificate, with a clear error", async () => {
    const r = await rig("tls-no-cert", { url: broker.url, tls: { ca: certs.ca } });
    const line = await r.waitLog(/MQTT connect failed/);
    expect(line).toMatch(/the broker refused our client certificate/);
    expect(r.logs.join("")).not.toContain("MQTT connected");
  });

  it("fails at start, naming the setting and the file, when a TLS file is missing", async () => {
    const missing = path.join(dir, "nope.pem");
    await expect(rig("tls-missing", { url: broker.url, tls: { ca: missing } })).rejects.toThrow(`mqtt.tls.ca: cannot read "${missing}": ENOENT`);
  });
});

async function readPem(file: string): Promise<Buffer> {
  const { readFile } = await import("node:fs/promises");
  return readFile(file);
}
