/**
 * Commands an adversary sends, against the real dispatcher and command handlers, a real model
 * store and a local HTTP server that records every request it gets (so "refused before any
 * download" is checked by the server, not by the code under test). Each case is one attack.
 */
import { createHash, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CommandDispatcher } from "../runtime/commands/dispatcher.js";
import { NonceStore } from "../runtime/commands/nonceStore.js";
import { RateLimiter } from "../runtime/commands/rateLimit.js";
import { reloadConfigCommand } from "../runtime/commands/reloadConfig.js";
import { restartPipelineCommand } from "../runtime/commands/restartPipeline.js";
import { snapshotCommand } from "../runtime/commands/snapshot.js";
import { signStatement } from "../runtime/commands/statement.js";
import type { StatementPolicy } from "../runtime/commands/statementCheck.js";
import { bindCommand } from "../runtime/commands/types.js";
import { updateModelCommand } from "../runtime/commands/updateModel.js";
import type { CommandName } from "../runtime/config/sections/commands.js";
import { Metrics } from "../runtime/metrics.js";
import { ModelStore } from "../runtime/modelUpdate/store.js";
import type { ModelSwapTarget } from "../runtime/modelUpdate/swap.js";
import { ModelUpdater } from "../runtime/modelUpdate/updater.js";
import type { UrlPolicy } from "../runtime/modelUpdate/urlPolicy.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { Outbox } from "../runtime/outbox/outbox.js";
import type { ReloadResult } from "../runtime/supervise/reload.js";
import { loadPublicKey } from "../runtime/modelUpdate/signature.js";
import { busInto } from "./helpers/bus.js";
import { runCli } from "./helpers/cli.js";

const log = pino({ level: "silent" });
const topics = new Topics("cityedge", "dev-1");
const MODEL = Buffer.from("pretend this is an onnx file\n".repeat(100));
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const OPEN: UrlPolicy = { schemes: ["http", "https"], hosts: ["127.0.0.1"], allowPrivate: true };

let server: Server;
let base: string;
/** Every path the server was asked for, in order. */
const asked: string[] = [];
const keys = generateKeyPairSync("ed25519");
const stranger = generateKeyPairSync("ed25519");

interface Answer {
  topic: string;
  body: Record<string, unknown>;
}

interface Harness {
  dir: string;
  answers: Answer[];
  swapped: string[];
  reloads: number;
  dispatcher: CommandDispatcher;
  send(name: string, request: Record<string, unknown>): Promise<Record<string, unknown> | undefined>;
}

const unhandled: unknown[] = [];
const onUnhandled = (r: unknown) => unhandled.push(r);

function harness(
  dir: string,
  over: {
    signed?: CommandName[];
    publicKey?: KeyObject | null;
    policy?: UrlPolicy;
    rateLimits?: Record<string, number>;
    fleets?: string[];
    faults?: boolean;
  } = {},
): Harness {
  const answers: Answer[] = [];
  const swapped: string[] = [];
  const h = { dir, answers, swapped, reloads: 0 } as Harness;
  const target: ModelSwapTarget = {
    modelIds: () => ["vehicles"],
    swap: async (_id, v) => {
      if (over.faults) throw new Error("injected: the new session does not load");
      swapped.push(v?.sha256 ?? "shipped");
      return { provider: "cpu" };
    },
  };
  const updater = new ModelUpdater({
    store: new ModelStore(dir),
    target,
    policy: over.policy ?? OPEN,
    minFreeBytes: 0,
    probationMs: 0,
    maxBytes: 64 * 1024,
    timeoutMs: 10_000,
    keepVersions: 3,
    metrics: new Metrics(),
    log,
  });
  const statements: StatementPolicy = {
    ...(over.publicKey === null ? {} : { publicKey: over.publicKey ?? keys.publicKey }),
    signed: over.signed ?? ["update_model"],
    deviceId: "dev-1",
    fleets: over.fleets ?? [],
    maxValidityMs: 86_400_000,
    skewMs: 300_000,
    nonces: new NonceStore(dir),
    dataDir: dir,
  };
  const cameras = {
    cameraIds: () => ["gate-3"],
    picture: () => {
      if (over.faults) throw new Error("injected: the frame slot is gone");
      return Promise.resolve(undefined);
    },
    restartPipeline: (): Promise<void> => {
      if (over.faults) throw new Error("injected: stop() threw before returning a promise");
      return Promise.resolve();
    },
  };
  const reload = (): Promise<ReloadResult> => {
    h.reloads++;
    if (over.faults) throw new Error("injected: reload threw synchronously");
    return Promise.resolve({
      outcome: "planned",
      config: "x.yaml",
      restarted: [],
      started: [],
      stopped: [],
      kept: [],
      in_place: [],
    } as unknown as ReloadResult);
  };
  h.dispatcher = new CommandDispatcher({
    topics,
    bus: busInto({ publish: (topic, body) => void answers.push({ topic, body }) }, topics),
    source: { subscribeCommands: () => () => undefined },
    log,
    metrics: new Metrics(),
    allow: ["reload_config", "update_model", "snapshot", "restart_pipeline"],
    statements,
    rateLimiter: new RateLimiter(over.rateLimits ?? { reload_config: 100, update_model: 100, snapshot: 100, restart_pipeline: 100, unknown: 100 }),
    commands: [
      bindCommand(reloadConfigCommand({ configFile: "x.yaml", reload })),
      bindCommand(updateModelCommand(updater)),
      bindCommand(snapshotCommand(cameras)),
      bindCommand(restartPipelineCommand(cameras)),
    ],
  });
  h.send = async (name, request) => {
    const before = answers.length;
    await h.dispatcher.handle(topics.command(name), Buffer.from(JSON.stringify(request)));
    return answers.slice(before).at(-1)?.body;
  };
  return h;
}

let seq = 0;
/** A signed statement for `command` with `fields`, as `cityedge sign` makes it. */
function signed(
  command: string,
  fields: Record<string, unknown>,
  over: Record<string, unknown> = {},
  key = keys.privateKey,
): Record<string, unknown> {
  const now = Date.now();
  const statement = {
    device: "dev-1",
    issued_at: new Date(now - 1000).toISOString(),
    expires_at: new Date(now + 3_600_000).toISOString(),
    nonce: `nonce-${process.pid}-${++seq}-abcdefgh`,
    ...fields,
    ...over,
  };
  for (const [k, v] of Object.entries(statement)) if (v === undefined) delete (statement as Record<string, unknown>)[k];
  return { id: `r-${seq}`, ...statement, signature: signStatement(key, command, statement) };
}

const update = (version: string, over: Record<string, unknown> = {}) =>
  signed("update_model", { model: "vehicles", version, sha256: sha(MODEL), url: `${base}/model.onnx` }, over);

const errorOf = (a: Record<string, unknown> | undefined) =>
  (a?.error as { code: string; message: string } | undefined) ?? { code: "ok", message: "" };

describe("commands an adversary sends", () => {
  let dir: string;

  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    server = createServer((req, res) => {
      asked.push(req.url ?? "");
      if (req.url === "/model.onnx") res.writeHead(200, { "content-length": MODEL.length }).end(MODEL);
      else if (req.url === "/huge.onnx") res.writeHead(200, { "content-length": 10 * 1024 * 1024 }).end();
      else if (req.url === "/to-localhost")
        res.writeHead(302, { location: `http://localhost:${(server.address() as AddressInfo).port}/model.onnx` }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-cmdsec-"));
    asked.length = 0;
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    expect(unhandled).toEqual([]);
  });

  it("an unsigned, forged or tampered update_model is refused before any download", async () => {
    const h = harness(dir);
    const plain = { id: "u-1", model: "vehicles", version: "9.9.9", sha256: sha(MODEL), url: `${base}/model.onnx` };
    expect(errorOf(await h.send("update_model", plain))).toMatchObject({
      code: "rejected",
      message: expect.stringMatching(/^update_model needs a signed statement/),
    });
    const forged = signed(
      "update_model",
      { model: "vehicles", version: "9.9.9", sha256: sha(MODEL), url: `${base}/model.onnx` },
      {},
      stranger.privateKey,
    );
    expect(errorOf(await h.send("update_model", forged)).message).toMatch(/^the signature does not verify with commands\.public_key/);
    const tampered = { ...update("9.9.9"), sha256: "0".repeat(64) };
    expect(errorOf(await h.send("update_model", tampered)).message).toMatch(/^the signature does not verify/);
    // The same fields signed for another command do not pass for this one.
    const otherCommand = signed("reload_config", { model: "vehicles", version: "9.9.9", sha256: sha(MODEL), url: `${base}/model.onnx` });
    expect(errorOf(await h.send("update_model", otherCommand)).message).toMatch(/^the signature does not verify/);
    const noKey = harness(dir, { publicKey: null });
    expect(errorOf(await noKey.send("update_model", update("9.9.9"))).message).toMatch(/commands\.public_key is not set/);
    expect(asked).toEqual([]);
    expect(h.swapped).toEqual([]);
  });

  it("a statement for another device, a fleet it is not in, expired, from the future or valid too long is refused", async () => {
    const h = harness(dir, { fleets: ["north"] });
    const cases: [Record<string, unknown>, RegExp][] = [
      [update("1.0.0", { device: "dev-2" }), /is for device "dev-2", not this one/],
      [update("1.0.0", { device: undefined, fleet: "south" }), /fleet "south", which this device is not in/],
      [update("1.0.0", { device: undefined }), /exactly one of "device" and "fleet"/],
      [update("1.0.0", { issued_at: "2020-01-01T00:00:00Z", expires_at: "2020-01-01T01:00:00Z" }), /expired at 2020-01-01T01:00:00Z/],
      [
        update("1.0.0", { issued_at: new Date(Date.now() + 86_400_000).toISOString(), expires_at: new Date(Date.now() + 90_000_000).toISOString() }),
        /issued in the future/,
      ],
      [update("1.0.0", { expires_at: new Date(Date.now() + 30 * 86_400_000).toISOString() }), /longer than commands\.statement_max_validity_s/],
    ];
    for (const [req, why] of cases) expect(errorOf(await h.send("update_model", req)).message).toMatch(why);
    expect(asked).toEqual([]);
    expect(errorOf(await h.send("update_model", update("1.0.0", { device: undefined, fleet: "north" }))).code).toBe("ok");
    expect(asked).toEqual(["/model.onnx"]);
  });

  it("a replayed statement is refused, also after a restart; a downgrade or an older statement is refused; allow_downgrade is a signed choice", async () => {
    const h = harness(dir);
    const v13 = update("1.3.0");
    expect(errorOf(await h.send("update_model", v13)).code).toBe("ok");
    expect(errorOf(await h.send("update_model", v13)).message).toMatch(/was accepted before: a replayed statement is refused/);
    const restarted = harness(dir);
    expect(errorOf(await restarted.send("update_model", v13)).message).toMatch(/replayed statement is refused/);
    expect(errorOf(await restarted.send("update_model", update("1.2.0"))).message).toMatch(
      /version 1\.2\.0 is older than 1\.3\.0, the newest accepted for vehicles: a downgrade is refused/,
    );
    expect(errorOf(await restarted.send("update_model", update("1.3.0"))).message).toMatch(/version 1\.3\.0 of vehicles was accepted already/);
    const stale = update("1.4.0", { issued_at: new Date(Date.now() - 7_200_000).toISOString() });
    expect(errorOf(await restarted.send("update_model", stale)).message).toMatch(/before the newest one accepted for vehicles/);
    expect(errorOf(await restarted.send("update_model", update("1.10.0"))).code).toBe("ok");
    expect(errorOf(await restarted.send("update_model", update("1.2.0", { allow_downgrade: true }))).code).toBe("ok");
    expect(asked.filter((a) => a === "/model.onnx")).toHaveLength(3);
  });

  it("URLs: loopback, link-local, private, credentials, other hosts and schemes, redirects away are refused without a connection", async () => {
    const h = harness(dir, {
      policy: {
        schemes: ["https", "http"],
        hosts: ["127.0.0.1", "models.example.com", "localhost", "169.254.169.254", "10.0.0.1", "::1", "::ffff:127.0.0.1"],
        allowPrivate: false,
      },
    });
    const port = (server.address() as AddressInfo).port;
    const cases: [string, RegExp][] = [
      [`http://127.0.0.1:${port}/model.onnx`, /address 127\.0\.0\.1 is loopback, link-local or private/],
      [`http://localhost:${port}/model.onnx`, /localhost resolves to (127\.0\.0\.1|::1), a loopback, link-local or private address/],
      ["http://169.254.169.254/latest/meta-data/", /address 169\.254\.169\.254 is loopback, link-local or private/],
      ["http://10.0.0.1/model.onnx", /address 10\.0\.0\.1 is loopback/],
      [`http://[::1]:${port}/model.onnx`, /address ::1 is loopback/],
      [`http://[::ffff:127.0.0.1]:${port}/model.onnx`, /address ::ffff:7f00:1 is loopback|address ::ffff:127\.0\.0\.1 is loopback/],
      ["https://evil.example.org/model.onnx", /host "evil\.example\.org" is not in commands\.model_update\.allowed_hosts/],
    ];
    for (const [url, why] of cases) {
      const a = await h.send("update_model", signed("update_model", { model: "vehicles", version: `2.${seq}.0`, sha256: sha(MODEL), url }));
      expect(errorOf(a).message, url).toMatch(why);
    }
    const creds = await h.send(
      "update_model",
      signed("update_model", { model: "vehicles", version: "3.0.0", sha256: sha(MODEL), url: "https://ops:hunter2@models.example.com/m.onnx" }),
    );
    expect(errorOf(creds).message).toMatch(/must not carry credentials/);
    expect(JSON.stringify(creds)).not.toContain("hunter2");
    const scheme = await harness(dir, { policy: { schemes: ["https"], hosts: ["127.0.0.1"], allowPrivate: true } }).send(
      "update_model",
      update("3.1.0"),
    );
    expect(errorOf(scheme).message).toMatch(/scheme "http" is not allowed \(allowed: https\)/);
    const redirect = await harness(dir, { policy: { schemes: ["http"], hosts: ["127.0.0.1"], allowPrivate: true } }).send(
      "update_model",
      signed("update_model", { model: "vehicles", version: "3.2.0", sha256: sha(MODEL), url: `${base}/to-localhost` }),
    );
    expect(errorOf(redirect).message).toMatch(/redirected to http:\/\/localhost:\d+\/model\.onnx: host "localhost" is not in/);
    expect(asked).toEqual(["/to-localhost"]);
    expect(readdirSync(path.join(dir, "models/vehicles/staging"))).toEqual([]);
  });

  it("a download larger than max_bytes is refused from its declared size, and leaves no partial file", async () => {
    const h = harness(dir);
    const a = await h.send(
      "update_model",
      signed("update_model", { model: "vehicles", version: "4.0.0", sha256: sha(MODEL), url: `${base}/huge.onnx` }),
    );
    expect(errorOf(a).message).toMatch(/10485760 bytes is over the limit of 65536 \(commands\.model_update\.max_bytes\)/);
    expect(readdirSync(path.join(dir, "models/vehicles/staging"))).toEqual([]);
  });

  it("reload_config, snapshot and restart_pipeline can require a signed statement too", async () => {
    const h = harness(dir, { signed: ["reload_config", "snapshot", "restart_pipeline"] });
    expect(errorOf(await h.send("reload_config", { id: "x" })).message).toMatch(/^reload_config needs a signed statement/);
    expect(errorOf(await h.send("snapshot", { id: "x", camera: "gate-3" })).message).toMatch(/^snapshot needs a signed statement/);
    expect(errorOf(await h.send("restart_pipeline", { id: "x", camera: "gate-3" })).message).toMatch(/^restart_pipeline needs a signed statement/);
    expect(h.reloads).toBe(0);
    expect(errorOf(await h.send("reload_config", signed("reload_config", {}))).code).toBe("ok");
    expect(errorOf(await h.send("restart_pipeline", signed("restart_pipeline", { camera: "gate-3" }))).code).toBe("ok");
    // A statement for one camera does not pass for another.
    const s = signed("restart_pipeline", { camera: "gate-3" });
    expect(errorOf(await h.send("restart_pipeline", { ...s, camera: "gate-4" })).message).toMatch(/does not verify/);
  });

  it("a burst is rate limited per command, with one answer per 10 s, and made-up names share one bucket", async () => {
    const h = harness(dir, { rateLimits: { reload_config: 2, update_model: 4, snapshot: 12, restart_pipeline: 6, unknown: 3 } });
    const codes: string[] = [];
    for (let i = 0; i < 10; i++) codes.push(errorOf(await h.send("reload_config", { id: `b-${i}` })).code);
    expect(codes.slice(0, 2)).toEqual(["ok", "ok"]);
    expect(codes[2]).toBe("rate_limited");
    // Each accepted reload_config is a dry run and an apply: two accepted, four calls.
    expect(h.reloads).toBe(4);
    // The others got no answer at all: a flood does not become a flood of answers.
    expect(h.answers.filter((a) => a.topic.endsWith("/reload_config/response"))).toHaveLength(3);
    for (let i = 0; i < 50; i++) await h.send(`made-up-${i}`, { id: `m-${i}` });
    expect(h.answers.filter((a) => /made-up/.test(a.topic))).toHaveLength(4);
  });

  it("unknown command names create no per-topic state: their answers share one seq numbering", async () => {
    const outbox = new Outbox({ file: path.join(dir, "outbox.sqlite"), deviceId: "dev-1", maxRows: 100_000, maxBytes: 1e9, sync: "normal", log });
    await outbox.start();
    const h = harness(dir, { rateLimits: { reload_config: 2, update_model: 4, snapshot: 12, restart_pipeline: 6, unknown: 100_000 } });
    const d = new CommandDispatcher({
      topics,
      bus: busInto(outbox, topics),
      source: { subscribeCommands: () => () => undefined },
      log,
      metrics: new Metrics(),
      allow: ["reload_config"],
      commands: [],
    });
    void h;
    for (let i = 0; i < 2000; i++) await d.handle(topics.command(`x${i}`), Buffer.from(JSON.stringify({ id: `u${i}` })));
    outbox.flush();
    const rows = outbox.read(0, 10_000);
    expect(rows).toHaveLength(2000);
    expect(new Set(rows.map((r) => r.topic)).size).toBe(2000);
    expect(rows.map((r) => (JSON.parse(r.payload) as { seq: number }).seq)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    await outbox.stop();
    const ledger = readFileSync(path.join(dir, "outbox.seqstate"), "latin1");
    expect(ledger).not.toContain("cmd/x1/");
    expect(ledger).toContain("cmd/(unknown)/response");
  });

  it("every command with injected faults answers with an error and nothing is left unhandled", async () => {
    const h = harness(dir, { faults: true, signed: [] });
    const results = [
      await h.send("reload_config", { id: "f1" }),
      await h.send("snapshot", { id: "f2", camera: "gate-3" }),
      await h.send("restart_pipeline", { id: "f3", camera: "gate-3" }),
      await h.send("update_model", { id: "f4", model: "vehicles", sha256: sha(MODEL), url: `${base}/model.onnx` }),
      await h.send("update_model", { id: "f5", model: "vehicles", sha256: sha(MODEL), url: `${base}/nope.onnx` }),
      await h.send("update_model", { id: "f6", model: "vehicles", sha256: "a".repeat(64), url: `${base}/model.onnx` }),
      await h.send("snapshot", { id: "f7", camera: "gate-9" }),
      await h.send("nope", { id: "f8" }),
      await h.send("reload_config", { id: "f9", extra: 1 }),
    ];
    expect(results.map((r) => [r?.request_id, r?.ok, errorOf(r).code])).toEqual([
      ["f1", false, "failed"],
      ["f2", false, "failed"],
      ["f3", false, "failed"],
      ["f4", false, "rejected"],
      ["f5", false, "failed"],
      ["f6", false, "rejected"],
      ["f7", false, "not_found"],
      ["f8", false, "unknown_command"],
      ["f9", false, "malformed"],
    ]);
    for (const bad of ["", "{", "[]", "null", '{"id": 5}', "x".repeat(70_000)]) {
      await h.dispatcher.handle(topics.command("reload_config"), Buffer.from(bad));
    }
    // A bus that throws (an outbox refusing the answer) is logged, not thrown at the sender.
    const throwing = new CommandDispatcher({
      topics,
      bus: busInto(
        {
          publish: () => {
            throw new Error("injected: the outbox refuses");
          },
        },
        topics,
      ),
      source: { subscribeCommands: () => () => undefined },
      log,
      metrics: new Metrics(),
      allow: ["reload_config"],
      commands: [],
    });
    await expect(throwing.handle(topics.command("reload_config"), Buffer.from('{"id":"z"}'))).resolves.toBeUndefined();
    await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(path.join(dir, "models/vehicles/staging"))).toEqual([]);
  });

  it("`cityedge sign` (the real CLI) makes a key pair and requests the device accepts, once", async () => {
    const key = path.join(dir, "ops.pem");
    const made = await runCli(["sign", "--new-key", key]);
    expect(made.code).toBe(0);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const modelFile = path.join(dir, "m.onnx");
    writeFileSync(modelFile, MODEL);
    const out = await runCli([
      "sign",
      "--key",
      key,
      "--device",
      "dev-1",
      "update_model",
      "--model",
      "vehicles",
      "--version",
      "5.0.0",
      "--file",
      modelFile,
      "--url",
      `${base}/model.onnx`,
      "--valid-for",
      "10m",
    ]);
    expect(out.code).toBe(0);
    const request = JSON.parse(out.stdout) as Record<string, unknown>;
    expect(request).toMatchObject({ model: "vehicles", version: "5.0.0", sha256: sha(MODEL), device: "dev-1", url: `${base}/model.onnx` });
    expect(Date.parse(String(request.expires_at)) - Date.parse(String(request.issued_at))).toBe(600_000);
    const h = harness(dir, { publicKey: loadPublicKey(`${key}.pub`, dir) });
    expect(errorOf(await h.send("update_model", request)).code).toBe("ok");
    expect(errorOf(await h.send("update_model", request)).message).toMatch(/replayed statement is refused/);
    const reload = JSON.parse((await runCli(["sign", "--key", key, "--fleet", "north", "reload_config"])).stdout) as Record<string, unknown>;
    const fleetDevice = harness(dir, { publicKey: loadPublicKey(`${key}.pub`, dir), signed: ["reload_config"], fleets: ["north"] });
    expect(errorOf(await fleetDevice.send("reload_config", reload)).code).toBe("ok");
    expect((await runCli(["sign", "--key", key, "update_model"])).code).toBe(64);
    expect((await runCli(["sign", "--key", key, "--device", "d", "format_disk"])).stderr).toMatch(
      /COMMAND must be one of reload_config, update_model, snapshot, restart_pipeline/,
    );
    expect((await runCli(["sign", "--key", path.join(dir, "nope.pem"), "--device", "d", "reload_config"])).code).toBe(1);
  });
});
