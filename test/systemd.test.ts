import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SystemdNotifier } from "../runtime/systemd/watchdog.js";
import { NotifyListener } from "./helpers/notifyListener.js";
import { REPO_ROOT } from "./helpers/sharedData.js";

const quiet = pino({ level: "silent" });

describe("SystemdNotifier", () => {
  let dir: string;
  let listener: NotifyListener;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "cityedge-sd-"));
    listener = new NotifyListener(dir);
    await listener.listen();
  });

  afterEach(() => {
    vi.useRealTimers();
    if (child && child.exitCode === null) child.kill("SIGKILL");
    child = undefined;
    listener.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("sends READY=1, then feeds the watchdog while the loop runs, and stops feeding while it is blocked", async () => {
    child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/watchdogChild.ts"], {
      cwd: REPO_ROOT,
      env: { ...process.env, NOTIFY_SOCKET: listener.path, WATCHDOG_USEC: "200000" },
      stdio: ["pipe", "pipe", "inherit"],
    });
    const lines: { line: string; count: number }[] = [];
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (d: string) => {
      for (const line of d.split("\n").filter(Boolean)) lines.push({ line, count: listener.count("WATCHDOG=1") });
    });

    await listener.waitFor((m) => m.filter((x) => x.text === "WATCHDOG=1").length >= 3, "three watchdog feeds");
    expect(listener.messages[0]!.text).toMatch(/^READY=1\nSTATUS=test child\nMAINPID=\d+$/);

    child.stdin!.write("block 2500\n");
    await new Promise<void>((resolve) => {
      const check = () => (lines.some((l) => l.line === "BLOCK_END") ? resolve() : setTimeout(check, 20));
      check();
    });
    const start = lines.find((l) => l.line === "BLOCK_START")!;
    const end = lines.find((l) => l.line === "BLOCK_END")!;
    // Unblocked, 2.5 s would bring ~25 feeds at this period; blocked, none can be sent (one sent
    // just before the block may be read after the BLOCK_START line).
    expect(end.count - start.count).toBeLessThanOrEqual(1);

    const after = listener.count("WATCHDOG=1");
    await listener.waitFor((m) => m.filter((x) => x.text === "WATCHDOG=1").length >= after + 2, "feeds after the loop is free again");

    child.stdin!.end();
    await listener.waitFor((m) => m.some((x) => x.text.startsWith("STOPPING=1")), "STOPPING=1");
  });

  it("skips the feed while the daemon reports itself unhealthy", () => {
    vi.useFakeTimers();
    let healthy = true;
    let asked = 0;
    const n = new SystemdNotifier({
      log: quiet,
      env: { NOTIFY_SOCKET: listener.path, WATCHDOG_USEC: "1000000" },
      isHealthy: () => {
        asked++;
        return healthy;
      },
    });
    n.start();
    vi.advanceTimersByTime(500 * 4);
    expect(asked).toBe(4);
    expect(n.feeds).toBe(4);
    healthy = false;
    vi.advanceTimersByTime(500 * 4);
    expect(asked).toBe(8);
    expect(n.feeds).toBe(4);
    n.stop();
  });

  it("has no watchdog without WATCHDOG_USEC or when WATCHDOG_PID names another process", () => {
    expect(new SystemdNotifier({ log: quiet, env: { NOTIFY_SOCKET: listener.path } }).watchdogMs()).toBeUndefined();
    expect(
      new SystemdNotifier({ log: quiet, env: { WATCHDOG_USEC: "30000000", WATCHDOG_PID: String(process.pid + 1) } }).watchdogMs(),
    ).toBeUndefined();
    expect(new SystemdNotifier({ log: quiet, env: { WATCHDOG_USEC: "30000000", WATCHDOG_PID: String(process.pid) } }).watchdogMs()).toBe(30_000);
  });

  it("does nothing outside systemd and refuses abstract socket names with a clear log", () => {
    const n = new SystemdNotifier({ log: quiet, env: {} });
    n.start();
    n.ready();
    n.stop();
    const lines: string[] = [];
    const log = pino({ level: "error" }, { write: (s: string) => lines.push(s) });
    const abstract = new SystemdNotifier({ log, env: { NOTIFY_SOCKET: "@/org/freedesktop/systemd1/notify" } });
    abstract.start();
    abstract.ready();
    abstract.stop();
    expect(lines.join("")).toContain('NOTIFY_SOCKET \\"@/org/freedesktop/systemd1/notify\\" is an abstract socket');
    expect(listener.messages).toHaveLength(0);
  });
});
