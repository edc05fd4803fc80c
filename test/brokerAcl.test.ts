import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MOSQUITTO_BIN, Mosquitto } from "./helpers/mosquitto.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

/** The acl_file docs/operations.md gives under "Broker ACL", taken from the document itself. */
function readmeAcl(): string {
  const readme = readFileSync(path.join(REPO_ROOT, "docs", "operations.md"), "utf8");
  const section = readme.slice(readme.indexOf("**Broker ACL.**"));
  const m = /```text\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error("docs/operations.md has no acl_file block after **Broker ACL.**");
  return m[1]!;
}

/**
 * The README's broker ACL on a real mosquitto: only the operations console can put a command in
 * front of a device; a device cannot command itself or another one, and answers only its own.
 */
describe.skipIf(!MOSQUITTO_BIN)("the documented broker ACL", () => {
  let broker: Mosquitto;
  let dir: string;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    // Readable by the mosquitto user: started as root, mosquitto drops to it before reading these.
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-acl-"));
    chmodSync(dir, 0o755);
    const passwd = path.join(dir, "passwd");
    writeFileSync(passwd, "", { mode: 0o644 });
    for (const user of ["junction-0042", "junction-0043", "ops-console"]) execFileSync("mosquitto_passwd", ["-b", passwd, user, `pw-${user}`]);
    chmodSync(passwd, 0o644);
    const acl = path.join(dir, "acl");
    writeFileSync(acl, readmeAcl(), { mode: 0o644 });
    // The helper's config allows anonymous clients; these later lines override it.
    broker = new Mosquitto({ extra: ["allow_anonymous false", `password_file ${passwd}`, `acl_file ${acl}`] });
    await broker.start();
  });

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true);
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function connect(user: string): Promise<MqttClient> {
    const c = await mqtt.connectAsync(broker.url, { username: user, password: `pw-${user}`, reconnectPeriod: 0, protocolVersion: 5 });
    clients.push(c);
    return c;
  }

  /** Subscribes `who` to `filter`, has `from` publish, and reports whether it arrived (a marker message bounds the wait). */
  async function delivered(from: MqttClient, topic: string, who: MqttClient, filter: string): Promise<boolean> {
    const seen: string[] = [];
    const onMessage = (t: string, p: Buffer) => seen.push(`${t} ${p.toString()}`);
    who.on("message", onMessage);
    await who.subscribeAsync(filter, { qos: 1 });
    const token = `${Date.now()}-${Math.random()}`;
    // QoS 1: the PUBACK returns whether or not the ACL let the message through (MQTT 5 reports it).
    const ack = await from.publishAsync(topic, token, { qos: 1 }).then(
      (p) => p,
      (err: Error) => err,
    );
    // Then a message the subscriber is surely allowed to see, from the operations console, as the end marker.
    const ops = await connect("ops-console");
    const marker = `${filter.split("/").slice(0, 2).join("/")}/cmd/marker`;
    if (!filter.includes("/cmd/")) throw new Error("use a cmd filter");
    await ops.publishAsync(marker, `end-${token}`, { qos: 1 });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no end marker on ${marker}; ack ${JSON.stringify(ack)}`)), 15_000);
      const check = () => {
        if (seen.some((s) => s.endsWith(`end-${token}`))) {
          clearTimeout(t);
          resolve();
        } else setTimeout(check, 10);
      };
      check();
    });
    who.off("message", onMessage);
    await who.unsubscribeAsync(filter);
    return seen.some((s) => s === `${topic} ${token}`);
  }

  it("lets only the operations console send a device commands", async () => {
    const device = await connect("junction-0042");
    const other = await connect("junction-0043");
    const ops = await connect("ops-console");
    expect(await delivered(ops, "cityedge/junction-0042/cmd/reload_config", device, "cityedge/junction-0042/cmd/+")).toBe(true);
    expect(await delivered(other, "cityedge/junction-0042/cmd/reload_config", device, "cityedge/junction-0042/cmd/+")).toBe(false);
    expect(await delivered(device, "cityedge/junction-0042/cmd/update_model", device, "cityedge/junction-0042/cmd/+")).toBe(false);
  });

  it("lets a device answer its own commands only, and the console read the answers", async () => {
    const device = await connect("junction-0042");
    const other = await connect("junction-0043");
    const ops = await connect("ops-console");
    expect(await delivered(device, "cityedge/junction-0042/cmd/snapshot/response", ops, "cityedge/junction-0042/cmd/#")).toBe(true);
    expect(await delivered(other, "cityedge/junction-0042/cmd/snapshot/response", ops, "cityedge/junction-0042/cmd/#")).toBe(false);
  });
});
