/**
 * Secrets never shown: in config errors (numbers too, env overrides too), URL credentials with
 * `@`, `/` and `:` in the password, TLS material that is not PEM, what leaves the device
 * (/healthz, command answers) and ffmpeg's command line (read from /proc, as `ps` does).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createCamera, type Camera } from "../drivers/camera/index.js";
import { CommandDispatcher } from "../runtime/commands/dispatcher.js";
import { bindCommand } from "../runtime/commands/types.js";
import { updateModelCommand } from "../runtime/commands/updateModel.js";
import { loadConfig } from "../runtime/config/load.js";
import { CAMERA_SCHEMA } from "../runtime/config/sections/cameras.js";
import { Daemon } from "../runtime/daemon.js";
import { buildHealthParts } from "../runtime/http/index.js";
import { normalizeUserInfo, redactUrl, SecretScrubber, splitUserInfo } from "../runtime/log/logger.js";
import { Metrics } from "../runtime/metrics.js";
import { ModelStore } from "../runtime/modelUpdate/store.js";
import { ModelUpdater } from "../runtime/modelUpdate/updater.js";
import { clientOptions } from "../runtime/mqtt/clientOptions.js";
import { Topics } from "../runtime/mqtt/topics.js";
import type { Part } from "../runtime/part.js";
import { busInto } from "./helpers/bus.js";
import { configFiles } from "./helpers/configFiles.js";
import { ffmpegChildren, memoryLogger, RtspServer, takeFrames, waitFor } from "./helpers/camera.js";
import { sharedFile } from "./helpers/sharedData.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { write, problems } = configFiles(dir);

const CLIP = sharedFile("video/street-traffic-640x352.mp4");
const NUMERIC = "84736251";
const TRICKY = "p@ss/w:rd";
const CAM = `rtsp://admin:${TRICKY}@10.0.0.5/stream`;

describe("URL credentials", () => {
  it("take the last @ before the host: a password with @, / and : is redacted whole", () => {
    expect(splitUserInfo(CAM)).toEqual({ scheme: "rtsp://", user: "admin", password: TRICKY, rest: "10.0.0.5/stream" });
    expect(redactUrl(`camera ${CAM} lost`)).toBe("camera rtsp://admin:[redacted]@10.0.0.5/stream lost");
    expect(redactUrl(`{"url":"${CAM}","b":"https://tok@h/x"}`)).toBe(
      '{"url":"rtsp://admin:[redacted]@10.0.0.5/stream","b":"https://[redacted]@h/x"}',
    );
    expect(redactUrl("rtsp://10.0.0.5/stream")).toBe("rtsp://10.0.0.5/stream");
    // Percent-encoded, so that ffmpeg and WHATWG's URL find the same host (ffmpeg decodes it again).
    expect(normalizeUserInfo(CAM)).toBe("rtsp://admin:p%40ss%2Fw%3Ard@10.0.0.5/stream");
    expect(new URL(normalizeUserInfo(CAM)).hostname).toBe("10.0.0.5");
    expect(normalizeUserInfo("rtsp://admin:p%40ss@h/s")).toBe("rtsp://admin:p%40ss@h/s");
  });

  it("are scrubbed from log text as written and decoded", () => {
    const scrubber = new SecretScrubber();
    const { config, secrets } = loadConfig(write(`device_id: d\ncameras:\n  - id: c1\n    url: "${CAM}"\n`), {});
    expect(config.cameras[0]!.url).toBe(CAM);
    scrubber.setSecrets(secrets);
    expect(scrubber.scrub(`ffmpeg said p%40ss%2Fw%3Ard and ${TRICKY}`)).toBe("ffmpeg said [redacted] and [redacted]");
  });
});

describe("config errors never show a secret", () => {
  it("a numeric password in a type error is described, not shown", () => {
    const out = problems(`device_id: d\nmqtt:\n  password: ${NUMERIC}\n`);
    expect(out).toEqual([expect.stringMatching(/mqtt\.password: expected string, got a number \(not shown: a secret\)$/)]);
    expect(out.join("\n")).not.toContain(NUMERIC);
  });

  it("a numeric password from an environment override is the text it was; a bad one elsewhere is scrubbed by value", () => {
    const { config, secrets } = loadConfig(write("device_id: d\n"), { CITYEDGE__MQTT__PASSWORD: NUMERIC });
    expect(config.mqtt.password).toBe(NUMERIC);
    expect(secrets).toContain(NUMERIC);
    // The same value where a string is expected, and a url holding it: each message is scrubbed.
    const out = problems(`device_id: ${NUMERIC}\nmqtt:\n  url: "mqtt://u:${NUMERIC}@broker:1883 x"\n  password: ${NUMERIC}\n`);
    expect(out.join("\n")).not.toContain(NUMERIC);
    expect(out).toEqual([
      expect.stringMatching(/device_id: expected string, got \[redacted\]$/),
      expect.stringMatching(/mqtt\.url: must be a URL starting with mqtt:\/\/.*, got "mqtt:\/\/u:\[redacted\]@broker:1883 x"$/),
      expect.stringMatching(/mqtt\.password: expected string, got a number \(not shown: a secret\)$/),
    ]);
    const viaEnv = problems("device_id: d\n", { CITYEDGE__MQTT__PASSWORD: NUMERIC, CITYEDGE__DEVICE_ID: NUMERIC });
    expect(viaEnv).toEqual([
      expect.stringMatching(/device_id: expected string, got \[redacted\] \(set by environment variable CITYEDGE__DEVICE_ID\)$/),
    ]);
  });

  it("a camera url with a tricky password is shown redacted in its errors", () => {
    const out = problems(`device_id: d\ncameras:\n  - id: c1\n    url: "rtsp://admin:${TRICKY}@10.0.0.5/a b"\n`);
    expect(out.join("\n")).not.toMatch(/p@ss|w:rd/);
    expect(out.join("\n")).toContain("rtsp://admin:[redacted]@10.0.0.5/a b");
  });

  it("TLS material from a reference that is not PEM is not shown as a path", () => {
    const material = "MC4CAQAwBQYDK2VwBCIEIBqZ5o6e4y0Ff3cqY9hQm0xkN2l0b3RhbGx5LXNlY3JldA";
    writeFileSync(path.join(dir, "cert.pem"), "-----BEGIN CERTIFICATE-----\n");
    const loaded = loadConfig(
      write("device_id: d\nmqtt:\n  url: mqtts://b:8883\n  tls:\n    key: ${env:MQTT_KEY}\n    cert: ./cert.pem\n    ca: ./ca.pem\n"),
      {
        MQTT_KEY: material,
      },
    );
    expect(loaded.referenced).toContain("mqtt.tls.key");
    const will = { topic: "t", payload: "" };
    let message = "";
    try {
      clientOptions(loaded.config.mqtt, "d", dir, will, loaded.referenced);
    } catch (err) {
      message = (err as Error).message;
    }
    // ca is read first: a path written in the file is named.
    expect(message).toBe(
      `mqtt.tls.ca: cannot read "${path.join(dir, "ca.pem")}": ENOENT: no such file or directory, open '${path.join(dir, "ca.pem")}'`,
    );
    const noCa = { ...loaded.config.mqtt, tls: { ...loaded.config.mqtt.tls!, ca: undefined } };
    expect(() => clientOptions(noCa, "d", dir, will, loaded.referenced)).toThrow(
      /^mqtt\.tls\.key: the value of its \$\{env:\} or \$\{file:\} reference is neither PEM text .* \(ENOENT\); not shown, it may be key material$/,
    );
    try {
      clientOptions(noCa, "d", dir, will, loaded.referenced);
    } catch (err) {
      expect((err as Error).message).not.toContain(material.slice(0, 12));
    }
  });
});

describe("what leaves the device never carries a secret", () => {
  const log = pino({ level: "silent" });

  it("/healthz: a part that puts a password and a credentialed url in its health shows neither", async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const file = write(`device_id: d\ndata_dir: ./data-h\nmqtt:\n  password: \${env:PW}\nhttp:\n  port: ${port}\n  health_publish_ms: 0\n`);
    const loaded = loadConfig(file, { PW: NUMERIC });
    const scrubber = new SecretScrubber();
    scrubber.setSecrets(loaded.secrets);
    const leaky: Part = {
      name: "leaky",
      kind: "meters",
      start: () => Promise.resolve(),
      stop: () => Promise.resolve(),
      health: () => ({ state: "degraded", error: `broker refused password ${NUMERIC}`, nested: { url: CAM } }),
    } as unknown as Part;
    const daemon = new Daemon({
      configFile: file,
      loaded,
      log,
      scrubber,
      env: { PW: NUMERIC },
      buildParts: (ctx) => [leaky, ...buildHealthParts(ctx)],
    });
    await daemon.start();
    try {
      const body = await (await fetch(`http://127.0.0.1:${port}/healthz`)).text();
      expect(body).toContain("broker refused password [redacted]");
      expect(body).toContain("rtsp://admin:[redacted]@10.0.0.5/stream");
      expect(body).not.toContain(NUMERIC);
      expect(body).not.toMatch(/p@ss|w:rd/);
    } finally {
      await daemon.stop();
    }
  });

  it("a command answer: an update_model url with a tricky password is refused without showing any of it", async () => {
    const topics = new Topics("cityedge", "d");
    const answers: Record<string, unknown>[] = [];
    const scrubber = new SecretScrubber();
    scrubber.setSecrets([NUMERIC]);
    const updater = new ModelUpdater({
      store: new ModelStore(path.join(dir, "models-store")),
      target: { modelIds: () => ["vehicles"], swap: () => Promise.resolve({ provider: "cpu" }) },
      policy: { schemes: ["https"], hosts: ["models.example.com"], allowPrivate: false },
      minFreeBytes: 0,
      probationMs: 0,
      maxBytes: 1024,
      timeoutMs: 1000,
      keepVersions: 2,
      metrics: new Metrics(),
      log,
    });
    const dispatcher = new CommandDispatcher({
      topics,
      bus: busInto({ publish: (_t, body) => void answers.push(body) }, topics),
      source: { subscribeCommands: () => () => undefined },
      log,
      metrics: new Metrics(),
      allow: ["update_model"],
      scrub: (v) => scrubber.scrubDeep(v, 32) as typeof v,
      commands: [bindCommand(updateModelCommand(updater))],
    });
    const urls = [
      `https://ops:${TRICKY}@models.example.com/m.onnx`,
      `https://${TRICKY}@models.example.com/m.onnx`,
      `https://ops:x${NUMERIC}@evil.example.org/m.onnx`,
    ];
    for (const [i, url] of urls.entries()) {
      await dispatcher.handle(
        topics.command("update_model"),
        Buffer.from(JSON.stringify({ id: `r${i}`, model: "vehicles", sha256: "a".repeat(64), url })),
      );
    }
    expect(answers).toHaveLength(3);
    for (const a of answers) expect(a).toMatchObject({ ok: false });
    const text = JSON.stringify(answers) + JSON.stringify(dispatcher.health());
    expect(text).not.toMatch(/p@ss|w:rd|ss\/w/);
    expect(text).not.toContain(NUMERIC);
    expect(text).toContain("[redacted]");
  });
});

describe("camera credentials stay off ffmpeg's command line", () => {
  const cameras: Camera[] = [];
  const servers: (Server | net.Server)[] = [];
  afterEach(async () => {
    await Promise.all(cameras.splice(0).map((c) => c.stop()));
    for (const s of servers.splice(0)) {
      if ("closeAllConnections" in s) s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  const cmdlines = (): string[] => ffmpegChildren().map((p) => readFileSync(`/proc/${p.pid}/cmdline`, "utf8").split("\0").join(" "));

  it("an HTTP camera: ffmpeg reads its url from a 0600 file in the run folder, removed after; the camera gets the password", async () => {
    const held: IncomingMessage[] = [];
    // Asks for credentials, then never answers the request that has them: ffmpeg waits, and can be looked at.
    const http = createServer((req, res) => {
      if (!req.headers.authorization) res.writeHead(401, { "www-authenticate": 'Basic realm="cam"' }).end();
      else held.push(req);
    });
    servers.push(http);
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
    const port = (http.address() as AddressInfo).port;
    const runDir = path.join(dir, "run-http");
    const { log, lines } = memoryLogger();
    const cam = createCamera(
      CAMERA_SCHEMA.parse({ id: "gate", url: `http://admin:${TRICKY}@127.0.0.1:${port}/video.mjpg`, stall_timeout_ms: 20_000 }),
      {
        log,
        baseDir: dir,
        runDir,
      },
    );
    cameras.push(cam);
    await cam.start();
    await waitFor(() => held.length > 0, "ffmpeg to ask the camera");
    const auth = held[0]!.headers.authorization;
    expect(auth && Buffer.from(auth.replace(/^Basic /, ""), "base64").toString()).toBe(`admin:${TRICKY}`);
    const argv = cmdlines();
    expect(argv).toHaveLength(1);
    expect(argv[0]).toMatch(/-f concat -safe 0 -protocol_whitelist \S+ -i \S+\.ffconcat/);
    expect(argv[0]).not.toMatch(/p@ss|w:rd|p%40ss|admin:/);
    const files = readdirSync(runDir);
    expect(files).toEqual([expect.stringMatching(/\.ffconcat$/)]);
    expect(statSync(path.join(runDir, files[0]!)).mode & 0o777).toBe(0o600);
    expect(statSync(runDir).mode & 0o777).toBe(0o700);
    await cam.stop();
    expect(readdirSync(runDir)).toEqual([]);
    expect(lines.join("\n")).not.toMatch(/p@ss|w:rd|p%40ss/);
  });

  it("an RTSP camera: the server is asked with the password, the command line never holds it", async () => {
    let authorization: string | undefined;
    const rtsp = net.createServer((s) => {
      let buf = "";
      s.on("data", (d: Buffer) => {
        buf += d.toString("latin1");
        const m = /Authorization: Basic (\S+)/.exec(buf);
        if (m) {
          authorization = Buffer.from(m[1]!, "base64").toString();
          return; // holds the request: ffmpeg waits
        }
        const cseq = /CSeq: (\d+)/.exec(buf)?.[1];
        if (cseq && buf.includes("\r\n\r\n")) {
          s.write(`RTSP/1.0 401 Unauthorized\r\nCSeq: ${cseq}\r\nWWW-Authenticate: Basic realm="cam"\r\n\r\n`);
          buf = "";
        }
      });
      s.on("error", () => s.destroy());
    });
    servers.push(rtsp);
    await new Promise<void>((r) => rtsp.listen(0, "127.0.0.1", () => r()));
    const port = (rtsp.address() as AddressInfo).port;
    const runDir = path.join(dir, "run-rtsp");
    const cam = createCamera(CAMERA_SCHEMA.parse({ id: "gate", url: `rtsp://admin:${TRICKY}@127.0.0.1:${port}/stream`, stall_timeout_ms: 20_000 }), {
      log: memoryLogger().log,
      baseDir: dir,
      runDir,
    });
    cameras.push(cam);
    await cam.start();
    await waitFor(() => authorization !== undefined, "ffmpeg to answer the camera's 401");
    expect(authorization).toBe(`admin:${TRICKY}`);
    const argv = cmdlines();
    expect(argv).toHaveLength(1);
    expect(argv[0]).not.toMatch(/p@ss|w:rd|p%40ss|admin:/);
    expect(readFileSync(path.join(runDir, readdirSync(runDir)[0]!), "utf8")).toContain("option rtsp_transport 'tcp'");
    await cam.stop();
    expect(readdirSync(runDir)).toEqual([]);
  });

  it.skipIf(!CLIP)("a real RTSP server: frames flow through the input file, and the command line holds no password", async () => {
    const server = new RtspServer({ clip: CLIP! });
    await server.start();
    try {
      const runDir = path.join(dir, "run-real");
      const { log, lines } = memoryLogger();
      // The GStreamer server takes any credentials: what matters is that ffmpeg reads the stream through the ffconcat file.
      const cam = createCamera(CAMERA_SCHEMA.parse({ id: "street", url: server.url(`admin:${TRICKY}@`), fps: 5 }), { log, baseDir: dir, runDir });
      cameras.push(cam);
      await cam.start();
      const frames = await takeFrames(cam, 5);
      expect(frames.map((f) => [f.width, f.height])).toEqual(Array(5).fill([416, 416]));
      const argv = cmdlines();
      expect(argv).toHaveLength(1);
      expect(argv[0]).toMatch(/-f concat -safe 0 .* -i \S+\.ffconcat/);
      expect(argv[0]).not.toMatch(/p@ss|w:rd|p%40ss|admin:/);
      expect(cam.health()).toMatchObject({ stream: "streaming", url: `rtsp://admin:[redacted]@127.0.0.1:${server.port}/cam` });
      await cam.stop();
      expect(readdirSync(runDir)).toEqual([]);
      expect(lines.join("\n")).not.toMatch(/p@ss|w:rd|p%40ss/);
    } finally {
      await server.kill();
    }
  });
});
