/**
 * The attacks of an adversary who can publish to the broker, against the real CLI on a real
 * mosquitto, with the daemon's data directory on a small tmpfs (a download that fills the disk is
 * real) and a local HTTP server that records what it is asked for.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { OutboxStore } from "../runtime/outbox/outboxStore.js";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { freePort, Mosquitto, MOSQUITTO_BIN } from "./helpers/mosquitto.js";
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
function writeConfig(
  allowPrivate: boolean,
  over: { http?: Record<string, unknown>; model_update?: Record<string, unknown>; rate_limits?: Record<string, number> } = {},
): string {
  return writeMqttConfig(root, broker.url, {
    device_id: "atk-1",
    data_dir: (fs as Tmpfs).dir,
    ...(over.http ? { http: over.http } : {}),
    commands: {
      public_key: signer.publicKeyFile,
      signed: ["update_model", "snapshot"],
      model_update: {
        allowed_schemes: ["http"],
        allowed_hosts: ["127.0.0.1"],
        allow_private_addresses: allowPrivate,
        min_free_bytes: 0,
        ...over.model_update,
      },
      rate_limits: { reload_config: 2, unknown: 5000, ...over.rate_limits },
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
      // Hangs: headers never come (the download's timeout ends it).
      if (req.url === "/hang.onnx") return;
      // Resets the connection halfway through the body.
      if (req.url === "/reset.onnx") {
        res.writeHead(200, { "content-length": 1024 * 1024 });
        res.write(Buffer.alloc(16 * 1024, 2), () => req.socket.destroy());
        return;
      }
      // Garbage headers, then a closed connection.
      if (req.url === "/garbage.onnx") {
        req.socket.end("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n\x00\x01");
        return;
      }
      // 64 MiB without a declared length: only max_bytes or the disk stops it.
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

  it("every command with injected faults gets an error answer naming the problem; the daemon lives, nothing is unhandled, health answers", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    expect(await daemon.kill("SIGTERM")).toBe(0);
    // The next test floods with the usual limits, whatever happens here.
    onTestFinished(async () => {
      await daemon.kill("SIGTERM");
      writeConfig(true);
      daemon = DaemonProcess.cli(config).start();
      await daemon.waitForLog(/listening for commands/);
      sub.messages.length = 0;
      await answering();
    });
    const port = await freePort();
    writeConfig(true, {
      http: { enabled: true, host: "127.0.0.1", port, health_publish_ms: 1000 },
      model_update: { max_bytes: 1024 * 1024, download_timeout_ms: 2000 },
      rate_limits: { reload_config: 100, update_model: 100, snapshot: 100, restart_pipeline: 100, unknown: 5000 },
    });
    daemon = DaemonProcess.cli(config).start();
    await daemon.waitForLog(/listening for commands/);
    sub.messages.length = 0;
    await answering();
    const health = async (): Promise<{ status: number; state: unknown }> => {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(10_000) });
      return { status: r.status, state: ((await r.json()) as { state: unknown }).state };
    };
    expect((await health()).status).toBeLessThan(600);

    /** Sends a raw payload; resolves with the answer to it (found by its id, or by being the next answer on the topic). */
    let raw = 0;
    const rawCommand = async (name: string, payload: Buffer | string): Promise<Received> => {
      const topic = `${BASE}/cmd/${name}/response`;
      const before = sub.on(topic).length;
      raw++;
      await cmd.publishAsync(`${BASE}/cmd/${name}`, payload, { qos: 1 });
      await sub.waitFor(`the answer to raw payload ${raw} on ${name}`, () => sub.on(topic).length > before, 60_000);
      return sub.on(topic)[before]!;
    };
    const update = (id: string, url: string, version: string) =>
      signer.request("update_model", id, { model: "vehicles", version, sha256: "0".repeat(64), url });
    const NAMES = ["reload_config", "update_model", "snapshot", "restart_pipeline", "no_such_command"];
    const tried: string[] = [];
    const expectError = (what: string, r: Received, code: string | RegExp, why: RegExp): void => {
      tried.push(what);
      expect(r.payload.ok, what).toBe(false);
      expect((r.payload.error as { code: string }).code, what).toMatch(code);
      expect(message(r), what).toMatch(why);
    };

    // Payloads no command can take, on every command name.
    for (const name of NAMES) {
      expectError(`${name}: malformed JSON`, await rawCommand(name, "{"), "malformed", /^payload is not JSON/);
      expectError(`${name}: a JSON array`, await rawCommand(name, "[1,2]"), "malformed", /payload must be a JSON object with an "id"/);
      expectError(`${name}: not UTF-8`, await rawCommand(name, Buffer.from([0xff, 0xfe, 0x00, 0x9c])), "malformed", /^payload is not JSON/);
      expectError(
        `${name}: no id`,
        await rawCommand(name, '{"camera":"cam"}'),
        "malformed",
        /"id" must be a string of 1\.\.128 characters, got none/,
      );
      expectError(`${name}: a numeric id`, await rawCommand(name, '{"id":42}'), "malformed", /"id" must be a string of 1\.\.128 characters, got 42/);
      expectError(`${name}: a 1 KiB id`, await rawCommand(name, JSON.stringify({ id: "i".repeat(1024) })), "malformed", /"id" must be a string/);
      expectError(
        `${name}: 100 KiB`,
        await rawCommand(name, JSON.stringify({ id: "h", pad: "x".repeat(100_000) })),
        "malformed",
        /over the 65536-byte limit/,
      );
      const deep = `{"id":"deep","camera":${"[".repeat(30_000)}${"]".repeat(30_000)}}`;
      const deepAnswer = await rawCommand(name, deep);
      tried.push(`${name}: 30,000 nested arrays`);
      expect(deepAnswer.payload.ok).toBe(false);
    }
    // Wrong types and missing fields, command by command.
    expectError(
      "reload_config: an unknown field",
      await command("reload_config", { id: "t-1", force: true }),
      "malformed",
      /invalid parameters for reload_config/,
    );
    expectError(
      "snapshot: wrong types",
      await command("snapshot", { id: "t-2", camera: 5, quality: "high", boxes: "yes" }),
      "malformed",
      /invalid parameters for snapshot/,
    );
    expectError("snapshot: no camera", await command("snapshot", { id: "t-3" }), "malformed", /invalid parameters for snapshot/);
    expectError("restart_pipeline: camera null", await command("restart_pipeline", { id: "t-4", camera: null }), "malformed", /invalid parameters/);
    expectError("restart_pipeline: no camera", await command("restart_pipeline", { id: "t-5" }), "malformed", /invalid parameters/);
    expectError("restart_pipeline: an unknown camera", await command("restart_pipeline", { id: "t-6", camera: "nope" }), "not_found", /nope/);
    expectError(
      "update_model: wrong types",
      await command("update_model", { id: "t-7", model: 5, version: [], sha256: true, url: 7 }),
      "malformed",
      /invalid parameters/,
    );
    expectError("update_model: nothing but an id", await command("update_model", { id: "t-8" }), "malformed", /invalid parameters/);
    expectError(
      "update_model: an unknown model, signed",
      await command(
        "update_model",
        signer.request("update_model", "t-9", { model: "nope", version: "1", sha256: "0".repeat(64), url: `${filesUrl}/x.onnx` }),
      ),
      "not_found",
      /nope/,
    );
    expectError(
      "snapshot: signed for an unknown camera",
      await command("snapshot", signer.request("snapshot", "t-10", { camera: "nope" })),
      "not_found",
      /nope/,
    );
    const wrongTypes = await command("snapshot", { id: "t-2b", camera: 5, quality: "high", boxes: "yes" });
    expect((wrongTypes.payload.error as { details: string[] }).details.join("\n")).toMatch(/camera: .*string/);

    // Downloads that go wrong, signed and allowed: each is an answer naming what happened.
    expectError(
      "update_model: a server that hangs",
      await command("update_model", update("f-1", `${filesUrl}/hang.onnx`, "20")),
      "failed",
      /took longer than 2000 ms/,
    );
    expectError(
      "update_model: a server that resets",
      await command("update_model", update("f-2", `${filesUrl}/reset.onnx`, "21")),
      "failed",
      /download of .* failed: (aborted|socket hang up|ECONNRESET|read ECONNRESET)/,
    );
    expectError(
      "update_model: garbage headers",
      await command("update_model", update("f-3", `${filesUrl}/garbage.onnx`, "22")),
      "failed",
      /download of .* failed: /,
    );
    expectError(
      "update_model: a server that serves too much",
      await command("update_model", update("f-4", `${filesUrl}/big.onnx`, "23")),
      "failed",
      /more than 1048576 bytes/,
    );
    // The disk full while a download runs: the tmpfs filled to its last byte first.
    fs.fill();
    try {
      const full = await command("update_model", update("f-5", `${filesUrl}/big.onnx`, "24"));
      expectError(
        "update_model: the disk full",
        full,
        /^(failed|rejected)$/,
        /disk full while writing .*\.part|not enough free disk space|cannot record the statement's nonce/,
      );
      expect((await health()).status).toBeLessThan(600);
      // reload_config on a full disk: still an answer.
      const reload = await command("reload_config", { id: "f-6" });
      tried.push("reload_config: the disk full");
      expect(typeof reload.payload.ok).toBe("boolean");
    } finally {
      fs.free();
    }
    // A config file broken under a running daemon: reload_config is rejected with its problems.
    const good = readFileSync(config, "utf8");
    writeFileSync(config, `${good}\nmqtt: [\n`);
    try {
      const broken = await command("reload_config", { id: "f-7" });
      expectError("reload_config: a broken config file", broken, "rejected", /./);
    } finally {
      writeFileSync(config, good);
    }
    expect(readdirSync(path.join(fs.dir, "models/vehicles/staging"))).toEqual([]);

    // Alive, nothing unhandled or fatal, health answers, and a good command still works.
    expect(daemon.running).toBe(true);
    expect(daemon.log).not.toMatch(/unhandled|uncaught|"level":60/i);
    const h = await health();
    expect([200, 503]).toContain(h.status);
    expect(["ok", "degraded"]).toContain(h.state);
    await sub.waitFor("<base>/health after the faults", (msgs) => msgs.filter((m) => m.topic === `${BASE}/health`).length >= 2);
    const ok = await command("restart_pipeline", { id: "ok-1", camera: "cam" });
    expect(ok.payload.ok).toBe(true);
    console.info(`command faults tried (${tried.length}): ${tried.join("; ")}`);
    expect(tried).toHaveLength(57);
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
