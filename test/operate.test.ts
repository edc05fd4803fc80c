import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnCli, type CliProcess } from "./helpers/cli.js";
import { get, until } from "./helpers/http.js";
import { freePort, MOSQUITTO_BIN, Mosquitto } from "./helpers/mosquitto.js";
import { NotifyListener } from "./helpers/notifyListener.js";
import { parsePrometheus, sampleValue } from "./helpers/promParse.js";
import { validateMessage } from "./helpers/schemas.js";
import { Subscriber, type Received } from "./helpers/subscriber.js";

const BASE = "cityedge/op-test-01";

function config(o: { broker: string; httpPort: number; allow: string[]; extra?: string }): string {
  return `device_id: op-test-01
data_dir: ./data
log_level: info
mqtt:
  url: ${o.broker}
  reconnect_min_ms: 100
  reconnect_max_ms: 1000
http:
  port: ${o.httpPort}
  health_publish_ms: 1000
commands:
  allow: [${o.allow.join(", ")}]
${o.extra ?? ""}`;
}

/**
 * The daemon as an operator meets it: the real CLI under a fake systemd (a real notify socket),
 * a real mosquitto, /healthz and /metrics over HTTP, and commands over MQTT.
 */
describe.skipIf(!MOSQUITTO_BIN)("operating the daemon: health, metrics, commands, systemd", () => {
  let dir: string;
  let broker: Mosquitto;
  let daemon: CliProcess;
  let notify: NotifyListener;
  let sub: Subscriber;
  let cmd: MqttClient;
  let httpPort: number;
  let configFile: string;
  const url = (p: string) => `http://127.0.0.1:${httpPort}${p}`;

  /**
   * Publishes a command and resolves with its response. A command published while the daemon is
   * (re)connecting is not delivered (commands are not retained), so one with an id is re-sent
   * every 5 s until its answer comes.
   */
  async function command(name: string, payload: string | Record<string, unknown>): Promise<Received> {
    const raw = typeof payload === "string" ? payload : JSON.stringify(payload);
    const id = typeof payload === "string" ? undefined : (payload.id as string | undefined);
    const topic = `${BASE}/cmd/${name}/response`;
    const before = sub.on(topic).length;
    const answered = () =>
      sub
        .on(topic)
        .slice(before)
        .find((m) => id === undefined || m.payload.request_id === id);
    const deadline = Date.now() + 60_000;
    for (;;) {
      await cmd.publishAsync(`${BASE}/cmd/${name}`, raw, { qos: 1 });
      try {
        await sub.waitFor(`a response to ${name}`, () => answered() !== undefined, id === undefined ? 30_000 : 5000);
        break;
      } catch (err) {
        if (id === undefined || Date.now() > deadline) throw err;
      }
    }
    const res = answered()!;
    validateMessage(res.topic, res.payload);
    return res;
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-operate-"));
    broker = await new Mosquitto().start();
    httpPort = await freePort();
    configFile = path.join(dir, "config.yaml");
    writeFileSync(configFile, config({ broker: broker.url, httpPort, allow: ["reload_config", "update_model", "snapshot"] }));
    notify = new NotifyListener(dir);
    await notify.listen();
    sub = await Subscriber.connect(broker.url, `${BASE}/#`);
    cmd = await mqtt.connectAsync(broker.url, { reconnectPeriod: 200 });
    daemon = spawnCli(["run", "--config", configFile], { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: "2000000" });
    await notify.waitFor((m) => m.some((x) => x.text.startsWith("READY=1")), "READY=1");
    await until("the daemon's uplink", async () => ((await get(url("/healthz"))).status === 200 ? true : undefined));
  });

  afterAll(async () => {
    if (daemon && daemon.child.exitCode === null) {
      daemon.child.kill("SIGKILL");
      await daemon.exited;
    }
    await cmd?.endAsync(true);
    await sub?.close();
    await broker?.stop();
    notify?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("feeds the systemd watchdog and answers /healthz 200 with every part once the uplink is up", async () => {
    await notify.waitFor((m) => m.some((x) => x.text === "WATCHDOG=1"), "WATCHDOG=1");
    const health = await until("healthz 200", async () => {
      const r = await get(url("/healthz"));
      return r.status === 200 ? r : undefined;
    });
    expect(health.type).toBe("application/json");
    const body = JSON.parse(health.body) as Record<string, unknown>;
    expect(body.state).toBe("ok");
    expect(body.device_id).toBe("op-test-01");
    expect((body.mqtt as { state: string; connected: boolean }).connected).toBe(true);
    expect(Object.keys(body.parts as object)).toEqual(expect.arrayContaining(["outbox", "mqtt", "http", "commands"]));
    expect(body.problems).toEqual([]);
    expect((await get(url("/nope"))).status).toBe(404);
  });

  it("serves /metrics in the Prometheus text format, with process figures that a parser reads", async () => {
    const r = await get(url("/metrics"));
    expect(r.status).toBe(200);
    expect(r.type).toContain("text/plain; version=0.0.4");
    const families = parsePrometheus(r.body);
    expect(families.get("process_resident_memory_bytes")!.type).toBe("gauge");
    expect(sampleValue(families, "process_resident_memory_bytes")).toBeGreaterThan(1e6);
    expect(
      families
        .get("cityedge_event_loop_delay_seconds")!
        .samples.map((m) => m.labels.stat)
        .sort(),
    ).toEqual(["max", "p50", "p99"]);
    expect(sampleValue(families, "cityedge_mqtt_connected")).toBe(1);
  });

  it("publishes the health summary to <base>/health, valid against health.schema.json", async () => {
    await sub.waitFor("two health messages", () => sub.on(`${BASE}/health`).length >= 2);
    const msgs = sub.on(`${BASE}/health`);
    for (const m of msgs) validateMessage(m.topic, m.payload);
    const last = msgs[msgs.length - 1]!.payload;
    expect(last.device_id).toBe("op-test-01");
    expect(last.outbox).toMatchObject({ dropped: 0 });
    expect(msgs[1]!.payload.seq).toBe((msgs[0]!.payload.seq as number) + 1);
  });

  it("answers unknown, malformed and refused commands with an error, and keeps running", async () => {
    const unknown = await command("format_disk", { id: "u1" });
    expect(unknown.payload).toMatchObject({ request_id: "u1", command: "format_disk", ok: false, error: { code: "unknown_command" } });
    expect((unknown.payload.error as { message: string }).message).toBe(
      'unknown command "format_disk" (known: reload_config, update_model, snapshot, restart_pipeline)',
    );
    const notJson = await command("snapshot", "{not json");
    expect(notJson.payload).toMatchObject({ request_id: null, ok: false, error: { code: "malformed" } });
    expect((notJson.payload.error as { message: string }).message).toMatch(/^payload is not JSON: /);
    const noId = await command("snapshot", { camera: "gate" });
    expect(noId.payload).toMatchObject({
      request_id: null,
      ok: false,
      error: { code: "malformed", message: '"id" must be a string of 1..128 characters, got none' },
    });
    const array = await command("snapshot", "[1,2]");
    expect(array.payload).toMatchObject({ ok: false, error: { code: "malformed", message: 'payload must be a JSON object with an "id"' } });
    const badParams = await command("update_model", { id: "p1", model: "m", url: "ftp://x", sha256: "abc", color: "red" });
    expect(badParams.payload).toMatchObject({
      request_id: "p1",
      ok: false,
      error: { code: "malformed", message: "invalid parameters for update_model" },
    });
    expect((badParams.payload.error as { details: string[] }).details).toEqual([
      "url: must be an http:// or https:// URL",
      "sha256: must be 64 hex digits",
      '(payload): unknown field "color"',
    ]);
    const refused = await command("restart_pipeline", { id: "r1", camera: "gate" });
    expect(refused.payload).toMatchObject({
      request_id: "r1",
      ok: false,
      error: {
        code: "not_allowed",
        message: 'command "restart_pipeline" is not allowed on this device (commands.allow: reload_config, update_model, snapshot)',
      },
    });
    const noCamera = await command("snapshot", { id: "s1", camera: "gate" });
    expect(noCamera.payload).toMatchObject({
      request_id: "s1",
      ok: false,
      error: { code: "not_found", message: 'unknown camera "gate" (cameras: none)' },
    });
    expect(daemon.child.exitCode).toBeNull();
    expect((await get(url("/healthz"))).status).toBe(200);
    const families = parsePrometheus((await get(url("/metrics"))).body);
    expect(families.get("cityedge_commands")!.type).toBe("counter");
    expect(sampleValue(families, "cityedge_commands_total", { command: "unknown", outcome: "unknown_command" })).toBe(1);
    expect(sampleValue(families, "cityedge_commands_total", { command: "snapshot", outcome: "malformed" })).toBe(3);
  });

  it("reload_config rejects a broken file with every error and changes nothing; a good file is applied", async () => {
    const started = daemon.stdout.filter((l) => l.includes("cityedge started")).length;
    writeFileSync(
      configFile,
      `${config({ broker: broker.url, httpPort, allow: ["reload_config", "update_model", "snapshot", "restart_pipeline"] })}log_levle: debug\noutbox:\n  inflight: 0\n`,
    );
    const bad = await command("reload_config", { id: "c1" });
    expect(bad.payload).toMatchObject({
      request_id: "c1",
      ok: false,
      error: { code: "rejected", message: `${configFile} has 2 problems; still running on the previous config` },
    });
    const details = (bad.payload.error as { details: string[] }).details;
    expect(details).toHaveLength(2);
    expect(details[0]).toMatch(/^\/.*\/config\.yaml:\d+:1 log_levle: unknown key "log_levle" \(did you mean "log_level"\?\)$/);
    expect(details[1]).toMatch(/:\d+:\d+ outbox\.inflight: must be 1\.\.65535, got 0$/);
    // Nothing changed: restart_pipeline is still refused, and no part was restarted.
    const still = await command("restart_pipeline", { id: "r2", camera: "gate" });
    expect(still.payload).toMatchObject({ ok: false, error: { code: "not_allowed" } });
    expect(daemon.stdout.filter((l) => l.includes("cityedge started")).length).toBe(started);

    writeFileSync(configFile, config({ broker: broker.url, httpPort, allow: ["reload_config", "update_model", "snapshot", "restart_pipeline"] }));
    const good = await command("reload_config", { id: "c2" });
    expect(good.payload).toMatchObject({ request_id: "c2", ok: true, result: { applying: true, config: configFile } });
    await daemon.waitForLine(/config reload applied/);
    const now = await command("restart_pipeline", { id: "r3", camera: "gate" });
    expect(now.payload).toMatchObject({
      request_id: "r3",
      ok: false,
      error: { code: "not_found", message: 'unknown camera "gate" (cameras: none)' },
    });
  });

  it("/healthz turns 503 when the broker is gone and 200 when it is back", async () => {
    await broker.kill("SIGKILL");
    const down = await until("healthz 503", async () => {
      const r = await get(url("/healthz"));
      return r.status === 503 ? r : undefined;
    });
    const body = JSON.parse(down.body) as { state: string; mqtt: { state: string; connected: boolean }; problems: string[] };
    expect(body.state).toBe("degraded");
    expect(body.mqtt).toMatchObject({ state: "degraded", connected: false });
    expect(body.problems.some((p) => p.startsWith("mqtt is degraded"))).toBe(true);
    await broker.start();
    await until("healthz 200 again", async () => ((await get(url("/healthz"))).status === 200 ? true : undefined));
  });

  it("tells systemd RELOADING=1, then READY=1 again, around a SIGHUP reload", async () => {
    const readies = () => notify.messages.filter((m) => m.text.startsWith("READY=1")).length;
    const before = readies();
    daemon.child.kill("SIGHUP");
    await notify.waitFor((m) => m.some((x) => x.text.startsWith("RELOADING=1\nMONOTONIC_USEC=")), "RELOADING=1");
    await notify.waitFor(() => readies() > before, "READY=1 after the reload");
    const reloading = notify.messages.findIndex((m) => m.text.startsWith("RELOADING=1"));
    const ready = notify.messages.findLastIndex((m) => m.text.startsWith("READY=1"));
    expect(ready).toBeGreaterThan(reloading);
    await until("healthz 200 after the reload", async () => ((await get(url("/healthz"))).status === 200 ? true : undefined));
  });

  it("tells systemd STOPPING=1 on SIGTERM and exits 0", async () => {
    daemon.child.kill("SIGTERM");
    await notify.waitFor((m) => m.some((x) => x.text.startsWith("STOPPING=1")), "STOPPING=1");
    expect(await daemon.exited).toBe(0);
  });
});
