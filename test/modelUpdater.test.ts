import { createHash, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CommandDispatcher } from "../runtime/commands/dispatcher.js";
import { bindCommand, CommandError } from "../runtime/commands/types.js";
import { updateModelCommand } from "../runtime/commands/updateModel.js";
import { Metrics } from "../runtime/metrics.js";
import { loadPublicKey } from "../runtime/modelUpdate/signature.js";
import { ModelStore, type ModelVersion } from "../runtime/modelUpdate/store.js";
import { loadWithFallback, type ModelSwapTarget } from "../runtime/modelUpdate/swap.js";
import { ModelUpdater } from "../runtime/modelUpdate/updater.js";
import { Topics } from "../runtime/mqtt/topics.js";
import { REPO_ROOT } from "./helpers/sharedData.js";
import { busInto } from "./helpers/bus.js";

const log = pino({ level: "silent" });
const MODEL = readFileSync(path.join(REPO_ROOT, "models/demand_lstm/demand.fp32.onnx"));
const GARBAGE = Buffer.from("not a model\n".repeat(50));
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Loads the file in a real onnxruntime session (and releases it): what "fails to load" means. */
const ortTarget = (loaded: (string | null)[]): ModelSwapTarget => ({
  modelIds: () => ["lstm"],
  swap: async (_id, v) => {
    const s = await ort.InferenceSession.create(v ? v.file : path.join(REPO_ROOT, "models/demand_lstm/demand.fp32.onnx"));
    await s.release();
    loaded.push(v?.sha256 ?? null);
    return { provider: "cpu" };
  },
});

describe("model updates: download, verification, store and fallback", () => {
  let dir: string;
  let server: Server;
  let base: string;
  let release: (() => void) | undefined;
  const files = new Map<string, Buffer>([
    ["/model.onnx", MODEL],
    ["/garbage.onnx", GARBAGE],
  ]);

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === "/slow.onnx") {
        // Sends the headers and half the body, then waits for the test.
        res.writeHead(200, { "content-length": MODEL.length });
        res.write(MODEL.subarray(0, 1000));
        release = () => res.end(MODEL.subarray(1000));
        return;
      }
      const body = files.get(req.url ?? "");
      if (!body) res.writeHead(404, "Not Found").end();
      else res.writeHead(200).end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-updater-"));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  const updater = (target: ModelSwapTarget, extra: Partial<ConstructorParameters<typeof ModelUpdater>[0]> = {}) =>
    new ModelUpdater({
      store: new ModelStore(dir),
      target,
      maxBytes: 10 * 1024 * 1024,
      timeoutMs: 30_000,
      keepVersions: 3,
      probationMs: 0,
      metrics: new Metrics(),
      log,
      ...extra,
    });

  async function refusal(p: Promise<unknown>): Promise<CommandError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CommandError);
    return err as CommandError;
  }

  it("names a bad public key clearly", () => {
    writeFileSync(path.join(dir, "rsa.pem"), generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" }));
    expect(() => loadPublicKey("rsa.pem", dir)).toThrow("commands.public_key: must be an ed25519 key, got rsa");
    expect(() => loadPublicKey("missing.pem", dir)).toThrow(`commands.public_key: cannot read ${path.join(dir, "missing.pem")}: ENOENT`);
  });

  it("refuses downloads that fail or are too big, leaving no partial file", async () => {
    const u = updater(ortTarget([]), { maxBytes: 1024 });
    const big = await refusal(u.update({ model: "lstm", url: `${base}/model.onnx`, sha256: sha(MODEL) }, log));
    expect(big.message).toBe(
      `download of ${base}/model.onnx failed: more than 1024 bytes (commands.model_update.max_bytes); the running model is unchanged`,
    );
    const missing = await refusal(u.update({ model: "lstm", url: `${base}/nope.onnx`, sha256: sha(MODEL) }, log));
    expect(missing.message).toBe(`download of ${base}/nope.onnx failed: HTTP 404 Not Found; the running model is unchanged`);
    expect(readdirSync(path.join(dir, "models/lstm/staging"))).toEqual([]);
    const unknown = await refusal(u.update({ model: "yolo", url: `${base}/model.onnx`, sha256: sha(MODEL) }, log));
    expect([unknown.code, unknown.message]).toEqual(["not_found", 'unknown model "yolo" (models: lstm)']);
  });

  it("keeps the current and previous versions, and prunes older ones", async () => {
    const u = updater(ortTarget([]), { keepVersions: 2 });
    const v1 = MODEL;
    const v2 = Buffer.concat([MODEL, Buffer.from([0x32, 2, 0x76, 0x32])]);
    const v3 = Buffer.concat([MODEL, Buffer.from([0x32, 2, 0x76, 0x33])]);
    files.set("/v2.onnx", v2);
    files.set("/v3.onnx", v3);
    await u.update({ model: "lstm", url: `${base}/model.onnx`, sha256: sha(v1) }, log);
    await u.update({ model: "lstm", url: `${base}/v2.onnx`, sha256: sha(v2) }, log);
    const r3 = await u.update({ model: "lstm", url: `${base}/v3.onnx`, sha256: sha(v3) }, log);
    expect(r3.previous_sha256).toBe(sha(v2));
    expect(readdirSync(path.join(dir, "models/lstm/versions")).sort()).toEqual([`${sha(v2)}.onnx`, `${sha(v3)}.onnx`].sort());
  });

  it("at start-up, falls back to the previous version when the current one fails to load, and remembers it", async () => {
    const store = new ModelStore(dir);
    const put = (b: Buffer): ModelVersion => {
      mkdirSync(path.join(dir, "models/lstm/versions"), { recursive: true });
      const file = path.join(dir, "models/lstm/versions", `${sha(b)}.onnx`);
      writeFileSync(file, b);
      return { sha256: sha(b), file, url: "http://x/", bytes: b.length, installed_at: new Date().toISOString() };
    };
    store.commit("lstm", put(MODEL));
    store.commit("lstm", put(GARBAGE));
    const tried: (string | null)[] = [];
    const load = async (v: ModelVersion | null) => {
      tried.push(v?.sha256 ?? null);
      const s = await ort.InferenceSession.create(v ? v.file : path.join(REPO_ROOT, "models/demand_lstm/demand.fp32.onnx"));
      return s;
    };
    const first = await loadWithFallback("lstm", store, load, log);
    await first.loaded.release();
    expect(tried).toEqual([sha(GARBAGE), sha(MODEL)]);
    expect(first.version?.sha256).toBe(sha(MODEL));
    const state = JSON.parse(readFileSync(path.join(dir, "models/lstm/state.json"), "utf8")) as {
      current: { sha256: string };
      last_rollback: { sha256: string; reason: string };
    };
    expect(state.current.sha256).toBe(sha(MODEL));
    expect(state.last_rollback.sha256).toBe(sha(GARBAGE));
    // The next start goes straight to the good version.
    tried.length = 0;
    const second = await loadWithFallback("lstm", new ModelStore(dir), load, log);
    await second.loaded.release();
    expect(tried).toEqual([sha(MODEL)]);
  });

  it("answers a second update_model while one runs with busy, through the dispatcher", async () => {
    const published: { topic: string; body: Record<string, unknown> }[] = [];
    const topics = new Topics("cityedge", "dev-1");
    const dispatcher = new CommandDispatcher({
      topics,
      bus: busInto({ publish: (topic, body) => void published.push({ topic, body }) }, topics),
      source: { subscribeCommands: () => () => undefined },
      log,
      metrics: new Metrics(),
      allow: ["update_model"],
      commands: [bindCommand(updateModelCommand(updater(ortTarget([]))))],
    });
    await dispatcher.start();
    const req = (id: string) => Buffer.from(JSON.stringify({ id, model: "lstm", url: `${base}/slow.onnx`, sha256: sha(MODEL) }));
    const first = dispatcher.handle(topics.command("update_model"), req("a"));
    await dispatcher.handle(topics.command("update_model"), req("b"));
    expect(published).toEqual([
      {
        topic: "cityedge/dev-1/cmd/update_model/response",
        body: {
          request_id: "b",
          command: "update_model",
          ok: false,
          error: { code: "busy", message: "update_model is already running; try again when it has answered" },
        },
      },
    ]);
    while (!release) await new Promise((r) => setTimeout(r, 10));
    release();
    await first;
    expect(published[1]!.body).toMatchObject({ request_id: "a", ok: true, result: { sha256: sha(MODEL) } });
    await dispatcher.stop();
    expect(existsSync(path.join(dir, "models/lstm/state.json"))).toBe(true);
  });

  it("cuts a download short when the daemon stops, answering why", async () => {
    const published: Record<string, unknown>[] = [];
    const topics = new Topics("cityedge", "dev-1");
    const u = updater(ortTarget([]));
    const dispatcher = new CommandDispatcher({
      topics,
      bus: busInto({ publish: (_topic, body) => void published.push(body) }, topics),
      source: { subscribeCommands: () => () => undefined },
      log,
      metrics: new Metrics(),
      allow: ["update_model"],
      commands: [bindCommand(updateModelCommand(u))],
      onStop: () => u.abort(),
    });
    await dispatcher.start();
    release = undefined;
    const running = dispatcher.handle(
      topics.command("update_model"),
      Buffer.from(JSON.stringify({ id: "s", model: "lstm", url: `${base}/slow.onnx`, sha256: sha(MODEL) })),
    );
    while (!release) await new Promise((r) => setTimeout(r, 10));
    await dispatcher.stop();
    await running;
    expect(published).toEqual([
      {
        request_id: "s",
        command: "update_model",
        ok: false,
        error: { code: "failed", message: `download of ${base}/slow.onnx failed: the daemon is stopping; the running model is unchanged` },
      },
    ]);
    expect(readdirSync(path.join(dir, "models/lstm/staging"))).toEqual([]);
  });
});
