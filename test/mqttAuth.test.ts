/** Username and password from the environment or a file (through the real config loader), against mosquitto with a password file. */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../runtime/config/load.js";
import { Daemon } from "../runtime/daemon.js";
import { SecretScrubber } from "../runtime/log/logger.js";
import { CONFIG_SCHEMA } from "../runtime/config/schema.js";
import { Metrics } from "../runtime/metrics.js";
import { buildMqtt } from "../runtime/mqtt/index.js";
import { MqttPublisher } from "../runtime/mqtt/publisher.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { Outbox } from "../runtime/outbox/outbox.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { Mosquitto, MOSQUITTO_BIN } from "./helpers/mosquitto.js";
import { Subscriber } from "./helpers/subscriber.js";

const PASSWORD = "s3cret-Pa55";
let dir: string;
let broker: Mosquitto;
const cleanups: (() => Promise<void>)[] = [];

async function runDaemon(file: string, env: NodeJS.ProcessEnv, logs: string[]): Promise<Daemon> {
  const loaded = loadConfig(file, env);
  const scrubber = new SecretScrubber();
  scrubber.setSecrets(loaded.secrets);
  const log = pino({ level: "info" }, { write: (s: string) => void logs.push(s) });
  const daemon = new Daemon({ configFile: file, loaded, log, scrubber, env, buildParts: (ctx) => buildMqtt(ctx).parts });
  cleanups.push(() => daemon.stop());
  await daemon.start();
  return daemon;
}

async function until(what: string, pred: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!MOSQUITTO_BIN)("MQTT credentials (mosquitto password file)", () => {
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-auth-"));
    chmodSync(dir, 0o755);
    const pw = path.join(dir, "passwd");
    execFileSync("mosquitto_passwd", ["-b", "-c", pw, "device", PASSWORD], { stdio: "ignore" });
    execFileSync("mosquitto_passwd", ["-b", pw, "watcher", "watch"], { stdio: "ignore" });
    chmodSync(pw, 0o644);
    broker = await new Mosquitto({ extra: ["allow_anonymous false", `password_file ${pw}`] }).start();
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  afterAll(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("connects with the password from ${env:…} and never logs it", async () => {
    const sub = await Subscriber.connect(broker.url, "cityedge/auth-env/#", { username: "watcher", password: "watch" });
    cleanups.push(() => sub.close());
    const work = mkdtempSync(path.join(dir, "env-"));
    const file = writeMqttConfig(work, broker.url, { device_id: "auth-env", mqtt: { username: "device", password: "${env:CE_TEST_MQTT_PASSWORD}" } });
    const logs: string[] = [];
    const daemon = await runDaemon(file, { CE_TEST_MQTT_PASSWORD: PASSWORD }, logs);
    await sub.waitFor("online", (msgs) => msgs.some((m) => m.payload.state === "online"));
    expect(daemon.health().mqtt).toMatchObject({ state: "running", connected: true });
    expect(logs.join("")).not.toContain(PASSWORD);
  });

  it("reports a refused password from ${file:…} clearly, names the settings, and keeps retrying", async () => {
    const work = mkdtempSync(path.join(dir, "file-"));
    writeFileSync(path.join(work, "mqtt-password"), "wrong-password\n");
    const file = writeMqttConfig(work, broker.url, { device_id: "auth-file", mqtt: { username: "device", password: "${file:mqtt-password}" } });
    const logs: string[] = [];
    const daemon = await runDaemon(file, {}, logs);
    await until("two refused attempts", () => logs.filter((l) => l.includes("MQTT connect failed")).length >= 2);
    const line = logs.find((l) => l.includes("MQTT connect failed"))!;
    expect(line).toContain("the broker refused our credentials (mqtt.username / mqtt.password)");
    expect(daemon.health().mqtt).toMatchObject({ state: "degraded", connected: false });
    expect(logs.join("")).not.toContain("wrong-password");
  });
});

describe.skipIf(!MOSQUITTO_BIN)("messages the broker refuses (MQTT 5 reason codes, mosquitto ACL)", () => {
  let aclDir: string;
  let aclBroker: Mosquitto;

  beforeAll(async () => {
    aclDir = mkdtempSync(path.join(os.tmpdir(), "cityedge-acl-"));
    chmodSync(aclDir, 0o755);
    const acl = path.join(aclDir, "acl");
    writeFileSync(acl, "topic readwrite cityedge/acl-1/status\ntopic readwrite cityedge/acl-1/test/ok\ntopic read #\n");
    chmodSync(acl, 0o644);
    aclBroker = await new Mosquitto({ extra: [`acl_file ${acl}`] }).start();
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  afterAll(async () => {
    await aclBroker?.stop();
    rmSync(aclDir, { recursive: true, force: true });
  });

  it("drops and counts a refused message instead of letting it block the queue; the rest go through in order", async () => {
    const logs: string[] = [];
    const log = pino({ level: "info" }, { write: (s: string) => void logs.push(s) });
    const metrics = new Metrics();
    const cfg = CONFIG_SCHEMA.parse({
      device_id: "acl-1",
      cameras: [],
      models: [],
      meters: [],
      forecasts: [],
      mqtt: { url: aclBroker.url, protocol_version: 5 },
    });
    const outbox = new Outbox({
      file: path.join(aclDir, "outbox.sqlite"),
      deviceId: "acl-1",
      maxRows: 1000,
      maxBytes: 1e8,
      sync: "normal",
      log,
      metrics,
    });
    // A window of 4, so that 10 refused messages would stall it for good if they stayed in flight.
    const publisher = new MqttPublisher({
      mqtt: cfg.mqtt,
      deviceId: "acl-1",
      baseDir: aclDir,
      topics: new Topics("cityedge", "acl-1"),
      outbox,
      inflight: 4,
      log,
      metrics,
    });
    cleanups.push(async () => {
      await publisher.stop();
      await outbox.stop();
    });
    const sub = await Subscriber.connect(aclBroker.url, "cityedge/acl-1/#");
    cleanups.push(() => sub.close());
    await outbox.start();
    await publisher.start();
    for (let i = 1; i <= 10; i++) {
      outbox.publish("cityedge/acl-1/test/denied", { i });
      outbox.publish("cityedge/acl-1/test/ok", { i });
    }
    await sub.waitFor("all 10 allowed messages", (msgs) => msgs.filter((m) => m.topic.endsWith("/test/ok")).length >= 10);
    await until("the outbox to empty", () => outbox.stats().depth === 0);
    expect(sub.on("cityedge/acl-1/test/ok").map((m) => m.payload.i)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(sub.on("cityedge/acl-1/test/denied")).toEqual([]);
    expect(outbox.stats().dropped).toBe(10);
    expect(await metrics.render()).toContain("cityedge_outbox_rejected_total 10");
    const refused = logs.filter((l) => l.includes("the broker refused a message; it is dropped and counted"));
    expect(refused).toHaveLength(10);
    expect(refused[0]).toContain("Not authorized (reason code 0x87)");
    expect(publisher.health()).toMatchObject({ connected: true, inflight: 0 });
  });
});
