/**
 * The attacks of an adversary who can publish to the broker, against the real CLI on a real
 * mosquitto, with the daemon's data directory on a small tmpfs (a download that fills the disk is
 * real) and a local HTTP server that records what it is asked for.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutboxStore } from "../runtime/outbox/outboxStore.js";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { Mosquitto, MOSQUITTO_BIN } from "./helpers/mosquitto.js";
import { testSigner } from "./helpers/signing.js";
import { Subscriber, type Received } from "./helpers/subscriber.js";
import { mountTmpfs, type Tmpfs } from "./helpers/tmpfs.js";

const BASE = "cityedge/atk-1";
let broker: Mosquitto;
let root: string;
let fs: Tmpfs | string;
let files: Server;
let filesUrl: string;
const asked: string[] = [];
let sub: Subscriber;
let cmd: MqttClient;
let daemon: DaemonProcess;
let signer: ReturnType<typeof testSigner>;
let config: string;

/** Resolves once the daemon answers commands (its subscription is acknowledged only after its log says it listens). */
async function answering(): Promise<void> {
  for (let i = 0; ; i++) {
    await cmd.publishAsync(`${BASE}/cmd/ping`, JSON.stringify({ id: `ping-${i}` }), { qos: 1 });
    try {
      await sub.waitFor("an answer to ping", (msgs) => msgs.some((m) => m.topic === `${BASE}/cmd/ping/response`), 2000);
      return;
    } catch (err) {
      if (i > 60) throw err;
    }
  }
}

/** The device: one camera on the bundled clip at 1 fps with the shipped vehicles detector (update_model swaps detectors). */
function writeConfig(allowPrivate: boolean): string {
  return writeMqttConfig(root, broker.url, {
    device_id: "atk-1",
    data_dir: (fs as Tmpfs).dir,
    commands: {
      public_key: signer.publicKeyFile,
      signed: ["update_model", "snapshot"],
      model_update: { allowed_schemes: ["http"], allowed_hosts: ["127.0.0.1"], allow_private_addresses: allowPrivate, min_free_bytes: 0 },
      rate_limits: { reload_config: 2, unknown: 5000 },
    },
    cameras: [{ id: "cam", url: `file://${path.resolve("models/synthetic/demo.mp4")}`, fps: 1, loop: true, realtime: true, model: "vehicles" }],
    models: [{ id: "vehicles", manifest: path.resolve("models/vehicles/manifest.json"), providers: ["cpu"], threads: 1 }],
  });
}

async function command(name: string, payload: Record<string, unknown>): Promise<Received> {
  const topic = `${BASE}/cmd/${name}/response`;
  const answered = () => sub.on(topic).find((m) => m.payload.request_id === payload.id);
  await cmd.publishAsync(`${BASE}/cmd/${name}`, JSON.stringify(payload), { qos: 1 });
  await sub.waitFor(`the answer to ${name} ${String(payload.id)}`, () => answered() !== undefined, 60_000);
  return answered()!;
}
const message = (r: Received) => (r.payload.error as { message: string } | undefined)?.message ?? "";
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe.skipIf(!MOSQUITTO_BIN)("attacks on the commands of a running daemon (real CLI, mosquitto, tmpfs)", { timeout: 180_000 }, () => {
  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), "cityedge-attack-"));
    fs = mountTmpfs(path.join(root, "data"), "4m");
    if (typeof fs === "string") return;
    files = createServer((req, res) => {
      asked.push(req.url ?? "");
      // 64 MiB without a declared length: only the disk stops it.
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 1);
      let n = 0;
      const more = () => {
        while (n < 1024) {
          n++;
          if (!res.write(chunk)) {
            res.once("drain", more);
            return;
          }
        }
        res.end();
      };
      more();
    });
    await new Promise<void>((r) => files.listen(0, "127.0.0.1", () => r()));
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    broker = await new Mosquitto().start();
    signer = testSigner(root, "atk-1");
    config = writeConfig(false);
    sub = await Subscriber.connect(broker.url, `${BASE}/#`);
    cmd = await mqtt.connectAsync(broker.url);
    daemon = DaemonProcess.cli(config).start();
    await daemon.waitForLog(/listening for commands/);
    await answering();
  });

  afterAll(async () => {
    await daemon?.stop();
    await sub?.close();
    await cmd?.endAsync();
    await broker?.stop();
    if (files) {
      files.closeAllConnections();
      await new Promise<void>((r) => files.close(() => r()));
    }
    if (typeof fs !== "string") fs?.unmount();
    rmSync(root, { recursive: true, force: true });
  });

  it("a bogus signature, a replay and a loopback URL are refused before the server is asked", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    const bogus = {
      ...signer.request("update_model", "a-1", { model: "vehicles", version: "9", sha256: sha(Buffer.from("x")), url: `${filesUrl}/m.onnx` }),
    };
    bogus.signature = Buffer.alloc(64, 7).toString("base64");
    expect(message(await command("update_model", bogus))).toMatch(/^the signature does not verify/);
    const loop = signer.request("update_model", "a-2", { model: "vehicles", version: "9", sha256: sha(Buffer.from("x")), url: `${filesUrl}/m.onnx` });
    expect(message(await command("update_model", loop))).toMatch(/address 127\.0\.0\.1 is loopback, link-local or private/);
    expect(message(await command("update_model", { ...loop, id: "a-3" }))).toMatch(/replayed statement is refused/);
    const snap = await command("snapshot", { id: "a-4", camera: "x" });
    expect(message(snap)).toMatch(/^snapshot needs a signed statement/);
    expect(asked).toEqual([]);
    expect(daemon.running).toBe(true);
  });

  it("a download that fills the disk is an error answer, not a crash; its partial file is gone; the daemon restarts clean", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    // The operator allows the local server for this one: the disk is what is attacked here.
    expect(await daemon.kill("SIGTERM")).toBe(0);
    writeConfig(true);
    daemon = DaemonProcess.cli(config).start();
    await daemon.waitForLog(/listening for commands/);
    sub.messages.length = 0;
    await answering();
    const big = signer.request("update_model", "d-1", { model: "vehicles", version: "10", sha256: "0".repeat(64), url: `${filesUrl}/big.onnx` });
    const res = await command("update_model", big);
    expect(message(res)).toMatch(/failed: disk full while writing .*\.part; the running model is unchanged$/);
    expect(daemon.running).toBe(true);
    expect(readdirSync(path.join(fs.dir, "models/vehicles/staging"))).toEqual([]);
    expect(await daemon.kill("SIGTERM")).toBe(0);
    daemon = DaemonProcess.cli(config).start();
    await daemon.waitForLog(/cityedge started/);
    expect(daemon.running).toBe(true);
  });

  it("5,000 made-up command names leave no per-topic state, and a reload_config flood is rate limited", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    for (let i = 0; i < 5000; i++) void cmd.publish(`${BASE}/cmd/junk-${i}`, JSON.stringify({ id: `j-${i}` }), { qos: 0 });
    await sub.waitFor(
      "answers to the made-up names",
      (msgs) => msgs.filter((m) => /\/cmd\/junk-\d+\/response$/.test(m.topic)).length >= 4000,
      120_000,
    );
    for (let i = 0; i < 6; i++) await cmd.publishAsync(`${BASE}/cmd/reload_config`, JSON.stringify({ id: `r-${i}` }), { qos: 1 });
    await sub.waitFor("a rate_limited answer", (msgs) =>
      msgs.some(
        (m) => m.topic === `${BASE}/cmd/reload_config/response` && (m.payload.error as { code?: string } | undefined)?.code === "rate_limited",
      ),
    );
    expect(await daemon.kill("SIGTERM")).toBe(0);
    const store = new OutboxStore(path.join(fs.dir, "outbox.sqlite"), "normal");
    const keys = [...store.seqs().keys()];
    store.close();
    expect(keys.filter((k) => k.includes("junk"))).toEqual([]);
    expect(keys).toContain(`${BASE}/cmd/(unknown)/response`);
    const answers = sub.messages.filter((m) => m.topic === `${BASE}/cmd/reload_config/response`);
    expect(answers.filter((m) => m.payload.ok === true).length).toBeLessThanOrEqual(2);
  });
});
