import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../runtime/config/load.js";
import { configFiles } from "./helpers/configFiles.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-config-"));
const { write, problems } = configFiles(dir);

describe("config validation", () => {
  it("accepts a minimal config and fills every default from the schema", () => {
    const { config } = loadConfig(write("device_id: j1\n"), {});
    expect(config.topic_prefix).toBe("cityedge");
    expect(config.mqtt.url).toBe("mqtt://127.0.0.1:1883");
    expect(config.mqtt.reconnect_max_ms).toBe(30000);
    expect(config.broker.enabled).toBe(false);
    expect(config.cameras).toEqual([]);
  });

  it("reports an unknown key at its line with the closest known key", () => {
    expect(problems("device_id: j1\nmqtt:\n  urll: mqtt://x\n")).toEqual(['F:3:3 mqtt.urll: unknown key "urll" (did you mean "url"?)']);
  });

  it("lists the known keys when nothing is close", () => {
    expect(problems("device_id: j1\nhttp:\n  zzzzzzzzzz: 1\n")).toEqual([
      'F:3:3 http.zzzzzzzzzz: unknown key "zzzzzzzzzz" (known keys: enabled, host, port, health_publish_ms, event_loop_lag_limit_ms, console, auth, allowed_origins)',
    ]);
  });

  it("reports wrong types with the value found", () => {
    expect(problems("device_id: j1\nmqtt:\n  keepalive_s: often\nbroker:\n  enabled: yes\n")).toEqual([
      'F:3:3 mqtt.keepalive_s: expected number, got "often"',
      'F:5:3 broker.enabled: expected boolean (true or false), got "yes"',
    ]);
  });

  it("reports values out of range with the allowed range", () => {
    expect(problems("device_id: j1\ncameras:\n  - id: gate-3\n    url: rtsp://cam/s\n    fps: 0\n")).toEqual([
      "F:5:5 cameras[0].fps: must be 0.1..60, got 0",
    ]);
    expect(problems("device_id: j1\nhttp:\n  port: 70000\n")).toEqual(["F:3:3 http.port: must be 1..65535, got 70000"]);
  });

  it("reports a missing required key and a bad enum value", () => {
    expect(problems("log_level: loud\n")).toEqual([
      "F:1:1 device_id: is required",
      'F:1:1 log_level: must be one of "fatal", "error", "warn", "info", "debug", "trace", got "loud"',
    ]);
  });

  it("reports YAML syntax errors with their position", () => {
    const p = problems("device_id: j1\nmqtt:\n  url: [unclosed\n");
    expect(p.length).toBeGreaterThan(0);
    expect(p[0]).toMatch(/^F:\d+:\d+: YAML syntax error: /);
  });

  it("reports duplicate keys as a YAML error", () => {
    expect(problems("device_id: j1\ndevice_id: j2\n")).toEqual(["F:2:1: YAML syntax error: Map keys must be unique"]);
  });

  it("reports cross-section conflicts, even alongside other errors", () => {
    const p = problems(
      [
        "device_id: j1",
        "cameras:",
        "  - id: a",
        "    url: rtsp://x/1",
        "    model: nope",
        "  - id: a",
        "    url: rtsp://x/2",
        "    fps: 100",
        "broker:",
        "  enabled: true",
        "  port: 9108",
        "",
      ].join("\n"),
    );
    expect(p).toEqual([
      'F:5:5 cameras[0].model: unknown model "nope" (models: none defined)',
      'F:6:5 cameras[1].id: duplicate id "a" (also cameras[0])',
      "F:8:5 cameras[1].fps: must be 0.1..60, got 100",
      "F:11:3 broker.port: port 9108 is also http.port; pick another",
    ]);
  });

  it("collects a typo, a type error and a cross-field conflict from one file", () => {
    const p = problems("device_id: j1\nmqtt:\n  usrname: me\n  keepalive_s: '30'\n  reconnect_min_ms: 50000\n  reconnect_max_ms: 1000\n");
    expect(p).toEqual([
      'F:3:3 mqtt.usrname: unknown key "usrname" (did you mean "username"?)',
      'F:4:3 mqtt.keepalive_s: expected number, got "30"',
      "F:5:3 mqtt.reconnect_min_ms: must not exceed mqtt.reconnect_max_ms (1000), got 50000",
    ]);
  });

  it("rejects restart delays whose first step is longer than their cap", () => {
    expect(
      problems(
        "device_id: j1\nsupervision:\n  initial_ms: 5000\n  max_ms: 1000\ncameras:\n  - id: a\n    url: rtsp://x/1\n    backoff:\n      initial_ms: 9000\n      max_ms: 2000\n",
      ),
    ).toEqual([
      "F:3:3 supervision.initial_ms: must not exceed supervision.max_ms (1000), got 5000",
      "F:9:7 cameras[0].backoff.initial_ms: must not exceed backoff.max_ms (2000), got 9000",
    ]);
  });

  it("rejects a TLS section on a plain mqtt:// url and a cert without a key", () => {
    expect(problems("device_id: j1\nmqtt:\n  url: mqtt://b:1883\n  tls:\n    cert: /c.pem\n")).toEqual([
      'F:4:3 mqtt.tls: TLS settings need an mqtts:// or wss:// url, got "mqtt://b:1883"',
      "F:5:5 mqtt.tls.cert: cert and key go together for mutual TLS; set both or neither",
    ]);
  });

  it("reports an unreadable file", () => {
    expect(() => loadConfig(path.join(dir, "missing.yaml"), {})).toThrow(/missing\.yaml:1:1: cannot read config: file not found/);
  });
});

describe("references and environment overrides", () => {
  it("resolves ${env:NAME} and ${file:path} references and records the secrets", () => {
    const secretFile = path.join(dir, "pw.txt");
    writeFileSync(secretFile, "s3cret-from-file\n");
    const f = write(`device_id: \${env:DEV}\nmqtt:\n  username: u-\${env:DEV}\n  password: \${file:${secretFile}}\n`);
    const loaded = loadConfig(f, { DEV: "j7" });
    expect(loaded.config.device_id).toBe("j7");
    expect(loaded.config.mqtt.username).toBe("u-j7");
    expect(loaded.config.mqtt.password).toBe("s3cret-from-file");
    expect(loaded.secrets).toContain("s3cret-from-file");
  });

  it("resolves a relative ${file:} against the config's directory", () => {
    writeFileSync(path.join(dir, "rel-pw"), "pw-rel");
    expect(loadConfig(write("device_id: j1\nmqtt:\n  password: ${file:rel-pw}\n"), {}).config.mqtt.password).toBe("pw-rel");
  });

  it("reports unresolvable references at their line", () => {
    expect(problems("device_id: j1\nmqtt:\n  password: ${env:NOPE_NOT_SET}\n  username: ${file:/nonexistent/x}\n")).toEqual([
      "F:3:13 mqtt.password: environment variable NOPE_NOT_SET is not set",
      "F:4:13 mqtt.username: cannot read /nonexistent/x: ENOENT",
    ]);
  });

  it("applies CITYEDGE__ overrides with YAML typing, into lists too", () => {
    const f = write("device_id: j1\ncameras:\n  - id: a\n    url: rtsp://x/1\n");
    const { config } = loadConfig(f, {
      CITYEDGE__MQTT__URL: "mqtts://b:8883",
      CITYEDGE__MQTT__KEEPALIVE_S: "45",
      CITYEDGE__BROKER__ENABLED: "true",
      CITYEDGE__CAMERAS__0__FPS: "5",
      CITYEDGE__LOG_LEVEL: "debug",
    });
    expect(config.mqtt.url).toBe("mqtts://b:8883");
    expect(config.mqtt.keepalive_s).toBe(45);
    expect(config.broker.enabled).toBe(true);
    expect(config.cameras[0]?.fps).toBe(5);
    expect(config.log_level).toBe("debug");
  });

  it("names the variable when an override is invalid", () => {
    expect(problems("device_id: j1\nmqtt:\n  keepalive_s: 30\n", { CITYEDGE__MQTT__KEEPALIVE_S: "abc" })).toEqual([
      'F:3:3 mqtt.keepalive_s: expected number, got "abc" (set by environment variable CITYEDGE__MQTT__KEEPALIVE_S)',
    ]);
  });
});

describe("shipped example configs", () => {
  const configDir = path.join(REPO_ROOT, "config");
  const files = readdirSync(configDir).filter((f) => f.endsWith(".yaml"));

  it("ships at least the demo and a production example", () => {
    expect(files).toContain("demo.yaml");
    expect(files.length).toBeGreaterThanOrEqual(2);
  });

  it.each(files)("%s validates", (file) => {
    const { config } = loadConfig(path.join(configDir, file), { CITYEDGE_MQTT_PASSWORD: "example", CITYEDGE_CAMERA_PASSWORD: "example" });
    expect(config.device_id.length).toBeGreaterThan(0);
  });
});
