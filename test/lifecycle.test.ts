import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli, spawnCli, type CliProcess } from "./helpers/cli.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-life-"));
const running: CliProcess[] = [];

afterEach(() => {
  for (const p of running.splice(0)) if (p.child.exitCode === null) p.child.kill("SIGKILL");
});

function config(name: string, extra = ""): string {
  const f = path.join(dir, name);
  // No embedded broker and no HTTP endpoint: these tests are about the lifecycle only.
  writeFileSync(f, `device_id: life-1\ndata_dir: ./data-${name}\nbroker:\n  enabled: false\nhttp:\n  enabled: false\n${extra}`);
  return f;
}

describe("the cityedge CLI", () => {
  it("prints its version", async () => {
    const r = await runCli(["version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("check-config exits 0 on a valid file", async () => {
    const r = await runCli(["check-config", config("ok.yaml")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("valid");
  });

  it("check-config exits 78 and reports a typo, a type error and a YAML syntax error with their lines", async () => {
    const f = path.join(dir, "bad.yaml");
    writeFileSync(f, "device_id: j1\nmqtt:\n  urll: mqtt://x\n  keepalive_s: often\n");
    const r = await runCli(["check-config", f]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${f}:3:3 mqtt.urll: unknown key "urll" (did you mean "url"?)`);
    expect(r.stderr).toContain(`${f}:4:3 mqtt.keepalive_s: expected number, got "often"`);

    const s = path.join(dir, "syntax.yaml");
    writeFileSync(s, "device_id: j1\nmqtt: {url: mqtt://x\n");
    const rs = await runCli(["check-config", s]);
    expect(rs.code).toBe(78);
    expect(rs.stderr).toMatch(new RegExp(`${s.replace(/[.]/g, "\\.")}:\\d+:\\d+: YAML syntax error`));
  });

  it("answers --help for every command with its own usage and exit 0, running nothing", async () => {
    for (const cmd of ["run", "check-config", "version", "bench", "config-reference", "forecast"]) {
      const r = await runCli([cmd, "--help"]);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toContain(`Usage: cityedge ${cmd}`);
    }
    const top = await runCli(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("cityedge check-config FILE");
  });

  it("rejects an unknown command with a usage message", async () => {
    const r = await runCli(["frobnicate"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });
});

describe("the daemon's lifecycle", () => {
  it("starts on a valid config and stops cleanly on SIGTERM with exit 0", async () => {
    const p = spawnCli(["run", "--config", config("run.yaml")]);
    running.push(p);
    await p.waitForLine(/"msg":"cityedge started"/);
    const t0 = Date.now();
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    // Generous bound: the contract is 10 s; this only catches a stop that hangs.
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(p.stdout.join("\n")).toContain('"msg":"cityedge stopped"');
  });

  it("stops cleanly on SIGINT too", async () => {
    const p = spawnCli(["run", "--config", config("int.yaml")]);
    running.push(p);
    await p.waitForLine(/"msg":"cityedge started"/);
    p.child.kill("SIGINT");
    expect(await p.exited).toBe(0);
  });

  it("exits 78 with the problems listed when the config is broken", async () => {
    const f = config("broken.yaml", "mqtt:\n  keepalive_s: often\n");
    const r = await runCli(["run", "--config", f]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${f}:8:3 mqtt.keepalive_s: expected number, got "often"`);
    expect(r.stderr).toContain("refusing to start");
  });

  it("on SIGHUP with a broken file keeps running on the old config, and applies a fixed one", async () => {
    const f = config("hup.yaml");
    const p = spawnCli(["run", "--config", f]);
    running.push(p);
    await p.waitForLine(/"msg":"cityedge started"/);

    writeFileSync(f, "device_id: life-1\nmqtt:\n  urll: x\n");
    p.child.kill("SIGHUP");
    await p.waitForLine(/config reload rejected; still running on the previous config/);
    expect(p.stdout.join("\n")).toContain('mqtt.urll: unknown key \\"urll\\" (did you mean \\"url\\"?)');
    expect(p.child.exitCode).toBeNull();

    writeFileSync(f, `device_id: life-2\ndata_dir: ./data-hup\nbroker:\n  enabled: false\nhttp:\n  enabled: false\n`);
    p.child.kill("SIGHUP");
    await p.waitForLine(/"device_id":"life-2".*"msg":"starting cityedge"/);
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  });
});

describe("log redaction", () => {
  it("never writes a configured password, or one inside a URL, to the log", async () => {
    const secret = "hunter2-Zq9!";
    const f = config(
      "redact.yaml",
      `log_level: debug\nmqtt:\n  url: mqtt://127.0.0.1:1\n  username: op\n  password: "${secret}"\ncameras:\n  - id: cam1\n    enabled: false\n    url: rtsp://admin:${encodeURIComponent(secret)}@10.0.0.9/stream\n`,
    );
    const p = spawnCli(["run", "--config", f]);
    running.push(p);
    await p.waitForLine(/"msg":"cityedge started"/);
    p.child.kill("SIGTERM");
    await p.exited;
    const all = [...p.stdout, ...p.stderr].join("\n");
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain(secret);
    expect(all).not.toContain(encodeURIComponent(secret));
  });
});
