/**
 * The MQTT contract: the AsyncAPI document matches the topic builder and the schema files, and
 * the real CLI's messages validate against their schemas, with status and seq as documented.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import YAML from "yaml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Topics } from "../runtime/mqtt/topics.js";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { Mosquitto, MOSQUITTO_BIN } from "./helpers/mosquitto.js";
import { SCHEMA_DIR, validateMessage } from "./helpers/schemas.js";
import { assertNoGaps, Subscriber } from "./helpers/subscriber.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

interface AsyncApi {
  channels: Record<string, { address: string; messages: Record<string, { $ref: string }> }>;
  components: { messages: Record<string, { payload: { $ref: string } }> };
  operations: Record<string, { action: string; channel: { $ref: string }; bindings?: { mqtt?: { qos?: number; retain?: boolean } } }>;
}

const doc = YAML.parse(readFileSync(path.join(REPO_ROOT, "runtime/contract/asyncapi.yaml"), "utf8")) as AsyncApi;

describe("AsyncAPI document", () => {
  it("has a channel for every topic the topic builder makes, with the same address", () => {
    const t = new Topics("P", "D");
    const built: Record<string, string> = {
      status: t.status(),
      health: t.health(),
      detections: t.detections("C"),
      counts: t.counts("C"),
      readings: t.readings("M"),
      forecasts: t.forecast("S"),
      command: t.command("N"),
      commandResponse: t.commandResponse("N"),
    };
    const params: Record<string, string> = { topic_prefix: "P", device_id: "D", camera_id: "C", meter_id: "M", series_id: "S", name: "N" };
    expect(Object.keys(doc.channels).sort()).toEqual(Object.keys(built).sort());
    for (const [name, ch] of Object.entries(doc.channels)) {
      expect(
        ch.address.replace(/\{(\w+)\}/g, (_, p: string) => params[p] ?? `?${p}`),
        name,
      ).toBe(built[name]);
    }
  });

  it("points every message at a schema file that exists, and leaves no schema file undocumented", () => {
    const referenced = new Set<string>();
    for (const m of Object.values(doc.components.messages)) {
      const file = path.basename(m.payload.$ref);
      referenced.add(file);
      expect(() => JSON.parse(readFileSync(path.join(SCHEMA_DIR, file), "utf8")) as unknown, file).not.toThrow();
    }
    const files = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith(".schema.json") && f !== "envelope.schema.json");
    expect(files.filter((f) => !referenced.has(f))).toEqual([]);
  });

  it("sends everything at QoS 1 and retains only status", () => {
    for (const [name, op] of Object.entries(doc.operations)) {
      expect(op.bindings?.mqtt?.qos, name).toBe(1);
      if (op.action === "send") expect(op.bindings?.mqtt?.retain, name).toBe(op.channel.$ref === "#/channels/status");
    }
  });
});

describe.skipIf(!MOSQUITTO_BIN)("the real CLI on mosquitto", { timeout: 180_000 }, () => {
  let broker: Mosquitto;
  let dir: string;
  const daemons: DaemonProcess[] = [];
  const subs: Subscriber[] = [];

  beforeAll(async () => {
    broker = await new Mosquitto().start();
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-contract-"));
  });

  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
    for (const s of subs.splice(0)) await s.close();
  });

  afterAll(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("publishes schema-valid status and health; offline by will on SIGKILL, stopped on SIGTERM; health seq continues across the restart", async () => {
    const base = "cityedge/cli-1";
    const config = writeMqttConfig(dir, broker.url, { device_id: "cli-1", http: { enabled: false, health_publish_ms: 1000 } });
    const sub = await Subscriber.connect(broker.url, `${base}/#`);
    subs.push(sub);
    const health = () => sub.on(`${base}/health`);
    const first = DaemonProcess.cli(config);
    daemons.push(first.start());
    await sub.waitFor("online and two health reports", (msgs) => msgs.some((m) => m.payload.state === "online") && health().length >= 2);
    await first.kill("SIGKILL");
    await sub.waitFor("offline (the will)", (msgs) => msgs.some((m) => m.topic === `${base}/status` && m.payload.state === "offline"));
    const healthBefore = health().length;
    const second = DaemonProcess.cli(config);
    daemons.push(second.start());
    await sub.waitFor("two more health reports", () => health().length >= healthBefore + 2);
    expect(await second.kill("SIGTERM")).toBe(0);
    await sub.waitFor("stopped", (msgs) => msgs.some((m) => m.topic === `${base}/status` && m.payload.state === "stopped"));

    for (const m of sub.messages) validateMessage(m.topic, m.payload);
    const status = sub.on(`${base}/status`).map((m) => `${String(m.payload.state)}#${String(m.payload.seq)}`);
    expect(status).toEqual(["online#1", "offline#2", "online#3", "stopped#4"]);
    const lastHealth = Math.max(...health().map((m) => m.payload.seq as number));
    assertNoGaps(sub.messages, `${base}/health`, 1, lastHealth);
    // A late subscriber gets the retained state.
    const late = await Subscriber.connect(broker.url, `${base}/status`);
    subs.push(late);
    await late.waitFor("retained status", (msgs) => msgs.length > 0);
    expect(late.messages[0]).toMatchObject({ retain: true, payload: { state: "stopped", seq: 4 } });
  });
});
