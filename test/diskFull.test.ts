/**
 * A full disk, for real: the daemon (the real CLI, simulated meters at 150 readings/s) runs with
 * its data directory on a small tmpfs of its own, which the test fills to the last byte. The
 * uplink goes through a TCP proxy that is cut while the disk is full (a reconnect at CONNACK
 * used to crash the daemon), and a subscriber on a real mosquitto audits every stream.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutboxStore } from "../runtime/outbox/outboxStore.js";
import { SeqLedger } from "../runtime/outbox/seqLedger.js";
import { DaemonProcess } from "./helpers/daemonProcess.js";
import { writeMqttConfig } from "./helpers/daemonConfig.js";
import { freePort, Mosquitto, MOSQUITTO_BIN } from "./helpers/mosquitto.js";
import { NotifyListener } from "./helpers/notifyListener.js";
import { validateMessage } from "./helpers/schemas.js";
import { auditStream, Subscriber, type Received } from "./helpers/subscriber.js";
import { TcpProxy } from "./helpers/tcpProxy.js";
import { mountTmpfs, type Tmpfs } from "./helpers/tmpfs.js";

const METERS = [0, 1, 2].map((i) => ({ id: `m${i}`, driver: "simulated", interval_ms: 1000, speed: 50, seed: i + 1 }));
const WATCHDOG_MS = 10_000;
/** How long the disk stays full after the reconnect; CITYEDGE_DISKFULL_HOLD_S makes it longer for a measurement run. */
const HOLD_MS = Number(process.env.CITYEDGE_DISKFULL_HOLD_S ?? 8) * 1000;
/** The data directory's tmpfs; CITYEDGE_DISKFULL_TMPFS sets another size (e.g. "4m"). */
const TMPFS_SIZE = process.env.CITYEDGE_DISKFULL_TMPFS ?? "24m";

interface HealthProbe {
  at: number;
  ms: number;
  status: number;
  body: { outbox?: { disk_full?: boolean; free_bytes?: number; dropped?: number }; problems?: string[]; event_loop_lag_ms?: { max_ms: number } };
}

let broker: Mosquitto;
let root: string;
let fs: Tmpfs | string;

describe.skipIf(!MOSQUITTO_BIN)("a full disk under the daemon (real CLI, tmpfs, mosquitto)", { timeout: 240_000 + HOLD_MS }, () => {
  beforeAll(async () => {
    broker = await new Mosquitto().start();
    root = mkdtempSync(path.join(os.tmpdir(), "cityedge-diskfull-"));
    fs = mountTmpfs(path.join(root, "data"), TMPFS_SIZE);
  });

  afterAll(async () => {
    if (typeof fs !== "string") fs.unmount();
    await broker?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("never crashes, keeps delivering, says so in health, loses nothing silently, and recovers when space returns", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    const disk = fs;
    const base = "cityedge/full-1";
    const readings = [0, 1, 2].map((i) => `${base}/meters/m${i}/readings`);
    const proxy = new TcpProxy(broker.port);
    await proxy.start();
    const notify = new NotifyListener(root);
    await notify.listen();
    const httpPort = await freePort();
    const config = writeMqttConfig(root, `mqtt://127.0.0.1:${proxy.port}`, {
      device_id: "full-1",
      data_dir: disk.dir,
      meters: METERS,
      outbox: { max_memory_messages: 600 },
      http: { enabled: true, port: httpPort, health_publish_ms: 1000 },
    });
    const sub = await Subscriber.connect(broker.url, `${base}/#`);
    const daemon = DaemonProcess.cli(config, { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: String(WATCHDOG_MS * 1000) }).start();
    const probes: HealthProbe[] = [];
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const at = Date.now();
        try {
          const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(60_000) });
          probes.push({ at, ms: Date.now() - at, status: res.status, body: (await res.json()) as HealthProbe["body"] });
        } catch {
          // Not up yet (start) or gone (stop): the probes that answered are what is judged.
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    try {
      await sub.waitFor("100 readings per meter", (msgs) => readings.every((t) => msgs.filter((m) => m.topic === t).length >= 100));
      const logFrom = daemon.log.length;
      const fullAt = Date.now();
      expect(disk.fill()).toBeGreaterThan(0);
      // The uplink goes too: the backlog must grow on a disk with no room, and the reconnect
      // (CONNACK writes the connection number) happens while it is full.
      proxy.cut();
      await daemon.waitForLog(/outbox cannot commit/, 60_000, logFrom);
      await daemon.waitForLog(/oldest messages dropped/, 60_000, logFrom);
      const connects = sub.messages.filter((m) => m.topic === `${base}/status` && m.payload.state === "online").length;
      proxy.reopen();
      await sub.waitFor(
        "online again while the disk is full",
        (msgs) => msgs.filter((m) => m.topic === `${base}/status` && m.payload.state === "online").length > connects,
      );
      // Health still reaches the cloud, past the outbox, and says why.
      await sub.waitFor("a health message saying disk full", (msgs) =>
        msgs.some((m) => m.topic === `${base}/health` && (m.payload.outbox as { disk_full?: boolean } | undefined)?.disk_full === true),
      );
      await new Promise((r) => setTimeout(r, HOLD_MS));
      expect(daemon.running).toBe(true);
      const freeAt = Date.now();
      disk.free();
      const fullLog = daemon.log.slice(logFrom);
      await sub.waitFor("health without disk full", (msgs) =>
        msgs.some(
          (m) =>
            m.topic === `${base}/health` &&
            Date.parse(String(m.payload.ts)) > freeAt &&
            (m.payload.outbox as { disk_full?: boolean }).disk_full === false,
        ),
      );
      const atFree = readings.map((t) => Math.max(0, ...sub.on(t).map((m) => m.payload.seq as number)));
      await sub.waitFor("readings flowing again", (msgs) =>
        readings.every((t, i) => msgs.some((m) => m.topic === t && (m.payload.seq as number) > atFree[i]! + 200)),
      );
      const final = probes.at(-1)!;
      expect(await daemon.kill("SIGTERM")).toBe(0);
      await sub.waitFor("status stopped", (msgs) => msgs.some((m) => m.topic === `${base}/status` && m.payload.state === "stopped"));
      polling = false;
      await poll;

      expect(daemon.log).not.toMatch(/"level":"fatal"/);
      for (const m of sub.messages) if (m.topic.endsWith("/readings") || m.topic.endsWith("/health")) validateMessage(m.topic, m.payload);
      // /healthz answered all along, and said "disk full" with the free space.
      const during = probes.filter((p) => p.at > fullAt + 3000 && p.at < freeAt);
      expect(during.length).toBeGreaterThan(5);
      expect(during.some((p) => p.status === 503 && p.body.outbox?.disk_full === true && p.body.outbox.free_bytes === 0)).toBe(true);
      expect(during.some((p) => p.body.problems?.some((l) => /outbox is degraded: disk full \(0 B free on /.test(l)))).toBe(true);
      // Every loss is a gap, and every gap is a loss made while the disk was full.
      let missing = 0;
      const gaps: string[] = [];
      for (const t of readings) {
        const a = auditStream(sub.messages, t);
        expect(a.idMismatches).toEqual([]);
        expect(a.outOfOrder).toEqual([]);
        expect(a.epochs).toHaveLength(1);
        for (const g of a.gaps) {
          missing += g.to - g.from + 1;
          gaps.push(`${t.split("/")[3]} ${g.from}..${g.to}`);
          // Readings carry the daemon's clock in `ts`: the messages on either side of the gap were made while the disk was full.
          const made = (m: Received | undefined) => (m ? Date.parse(String(m.payload.ts)) : NaN);
          expect(made(g.before)).toBeGreaterThanOrEqual(fullAt - 1000);
          expect(made(g.after)).toBeLessThanOrEqual(freeAt + 15_000);
        }
      }
      const dropped = final.body.outbox?.dropped ?? 0;
      expect(missing).toBeGreaterThan(0);
      expect(missing).toBeLessThanOrEqual(dropped);
      // One error line when it starts, then a summary a minute: not one per commit.
      const noisy = fullLog.split("\n").filter((l) => /"level":"(error|warn)"/.test(l) && !/"module":"mqtt"/.test(l));
      const minutes = (freeAt - fullAt) / 60_000;
      expect(noisy.length / minutes).toBeLessThan(30);
      // The watchdog was fed all along: never a silence as long as WatchdogSec.
      const feeds = notify.messages.filter((m) => m.text.startsWith("WATCHDOG=1") && m.at >= fullAt && m.at <= freeAt).map((m) => m.at);
      const gapsMs = feeds.slice(1).map((at, i) => at - feeds[i]!);
      expect(feeds.length).toBeGreaterThan(1);
      const silence = Math.max(...gapsMs, feeds[0]! - fullAt, freeAt - feeds.at(-1)!);
      const systemdLines = daemon.log.split("\n").filter((l) => /"module":"systemd"/.test(l));
      expect(silence, `feeds at ${feeds.map((at) => at - fullAt).join(", ")} ms after the fill; ${systemdLines.slice(0, 5).join("\n")}`).toBeLessThan(
        WATCHDOG_MS,
      );
      const published = readings.reduce((n, t) => n + Math.max(0, ...sub.on(t).map((m) => m.payload.seq as number)), 0);
      const received = readings.reduce((n, t) => n + new Set(sub.on(t).map((m) => m.payload.seq as number)).size, 0);
      // Every seq given out was received or lies in a gap: nothing lost without one.
      expect(received + missing).toBe(published);
      const lagMax = (list: HealthProbe[]) => Math.max(...list.map((p) => p.body.event_loop_lag_ms?.max_ms ?? 0));
      console.log(
        `[disk full] tmpfs ${TMPFS_SIZE}, ${Math.round((freeAt - fullAt) / 1000)} s full; ${published} readings published (seq given out), ${received} received, ` +
          `${missing} lost in ${gaps.length} gaps (${gaps.join(", ")}), dropped count ${dropped}; longest /healthz answer ${Math.max(...during.map((p) => p.ms))} ms, ` +
          `event-loop max ${lagMax(during)} ms while full, ${lagMax(probes)} ms over the run; ${noisy.length} error/warn lines while full, ` +
          `${(noisy.length / minutes).toFixed(1)} a minute; longest watchdog silence ${silence} ms`,
      );
    } finally {
      polling = false;
      await poll;
      // The daemon's whole log, for a measurement run or a failure to look into.
      if (process.env.CITYEDGE_DISKFULL_LOG) writeFileSync(process.env.CITYEDGE_DISKFULL_LOG, daemon.log);
      await daemon.stop();
      await sub.close();
      await proxy.stop();
      notify.close();
    }
  });

  it("a restart while the disk is still full continues every seq after the messages it dropped (the ledger holds the marks)", async (t) => {
    if (typeof fs === "string") return t.skip(fs);
    const disk = fs;
    for (const f of [
      "outbox.sqlite",
      "outbox.sqlite-wal",
      "outbox.sqlite-shm",
      "outbox.seqstate",
      "history.sqlite",
      "history.sqlite-wal",
      "history.sqlite-shm",
    ])
      rmSync(path.join(disk.dir, f), { force: true });
    const base = "cityedge/full-2";
    const readings = [0, 1, 2].map((i) => `${base}/meters/m${i}/readings`);
    const proxy = new TcpProxy(broker.port);
    await proxy.start();
    const config = writeMqttConfig(root, `mqtt://127.0.0.1:${proxy.port}`, {
      device_id: "full-2",
      data_dir: disk.dir,
      meters: METERS,
      outbox: { max_memory_messages: 300 },
    });
    const sub = await Subscriber.connect(broker.url, `${base}/#`);
    let daemon = DaemonProcess.cli(config).start();
    try {
      await sub.waitFor("50 readings per meter", (msgs) => readings.every((t) => msgs.filter((m) => m.topic === t).length >= 50));
      proxy.cut();
      disk.fill();
      await daemon.waitForLog(/oldest messages dropped/, 60_000);
      // Killed while its drops exist only in memory and in the ledger.
      await daemon.kill("SIGKILL");
      // What the first process gave out (the ledger) against what it committed (the outbox file):
      // the seqs in between were dropped, and no later message may carry one of them.
      const ledger = new SeqLedger(path.join(disk.dir, "outbox.seqstate"));
      const opened = ledger.open();
      ledger.close();
      if (opened.kind !== "ok") throw new Error(`ledger ${opened.kind}`);
      const store = new OutboxStore(path.join(disk.dir, "outbox.sqlite"), "normal");
      const committed = store.seqs();
      store.close();
      const droppedRanges = readings.map((t) => [committed.get(t) ?? 0, opened.state.topics.get(t)?.used ?? 0] as const);
      for (const [c, u] of droppedRanges) expect(u).toBeGreaterThan(c);
      daemon = DaemonProcess.cli(config).start();
      await daemon.waitForLog(/outbox open/, 60_000);
      proxy.reopen();
      await daemon.waitForLog(/MQTT connected/, 60_000);
      await new Promise((r) => setTimeout(r, 3000));
      expect(daemon.running).toBe(true);
      disk.free();
      const atFree = readings.map((t) => Math.max(0, ...sub.on(t).map((m) => m.payload.seq as number)));
      await sub
        .waitFor("readings flowing again", (msgs) =>
          readings.every((t, i) => msgs.some((m) => m.topic === t && (m.payload.seq as number) > atFree[i]! + 100)),
        )
        .catch((e: unknown) => {
          console.log("DEBUGLOG\n" + daemon.log.split("\n").slice(-60).join("\n"));
          throw e;
        });
      expect(await daemon.kill("SIGTERM")).toBe(0);
      for (const t of readings) {
        const a = auditStream(sub.messages, t);
        // Same epoch, no seq given twice: what the first process dropped stays a gap after the restart.
        expect(a.epochs).toHaveLength(1);
        expect(a.idMismatches).toEqual([]);
        expect(a.outOfOrder).toEqual([]);
        const [c, u] = droppedRanges[readings.indexOf(t)]!;
        expect(sub.on(t).filter((m) => (m.payload.seq as number) > c && (m.payload.seq as number) <= u)).toEqual([]);
        expect(sub.on(t).some((m) => (m.payload.seq as number) > u)).toBe(true);
      }
    } finally {
      await daemon.stop();
      await sub.close();
      await proxy.stop();
    }
  });
});
