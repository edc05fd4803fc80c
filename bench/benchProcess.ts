import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Helpers for benchmarks that run real processes: free ports, mosquitto, RSS, percentiles. */

/** A free TCP port on 127.0.0.1 (closed again before it is returned, so use it soon). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Resolves once something accepts TCP connections on the port; rejects after `timeoutMs` or when `failed` reports an error. */
export async function waitForPort(port: number, timeoutMs = 15_000, failed?: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const err = failed?.();
    if (err) throw err;
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const MOSQUITTO = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].find((p) => existsSync(p));

/** A mosquitto on 127.0.0.1 and a free port, with `extra` config lines; undefined when mosquitto is not installed. */
export async function startMosquitto(dir: string, extra: readonly string[] = []): Promise<{ port: number; child: ChildProcess } | undefined> {
  if (!MOSQUITTO) return undefined;
  const port = await freePort();
  const conf = path.join(dir, "mosquitto.conf");
  writeFileSync(
    conf,
    [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false", "log_dest none", "max_queued_messages 1000000", ...extra, ""].join(
      "\n",
    ),
  );
  const child = spawn(MOSQUITTO, ["-c", conf], { stdio: "ignore" });
  await waitForPort(port, 15_000);
  return { port, child };
}

/** Sends SIGTERM, then SIGKILL after `graceMs`, and resolves when the process is gone. */
export async function stopChild(child: ChildProcess | undefined, graceMs = 10_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await gone;
  clearTimeout(timer);
}

/** Resident set size of a process in MiB, from /proc (Linux); 0 when unknown. */
export function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
}

/** The real data the benchmarks read: `../shared/data` beside the checkout, or CITYEDGE_SHARED_DATA (as the tests find it). */
export function sharedDataDir(root = repoRoot()): string {
  return path.resolve(root, process.env.CITYEDGE_SHARED_DATA ?? "../shared/data");
}

/** The repository (or installed app) root: the nearest folder up with a package.json, from the sources or dist/. */
export function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(d, "package.json")) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den > 0 ? num / den : 0;
}

/** A benchmark option's value, as `--name=value` or `--name value`; undefined when it is not given. */
export function flagValue(args: readonly string[], name: string): string | undefined {
  const eq = args.find((a) => a.startsWith(`${name}=`));
  if (eq) return eq.slice(name.length + 1);
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

/**
 * The port a fixture server prints as "READY <port>" on its stdout (the RTSP server script);
 * rejects with `describe()` when it exits first or prints nothing within `timeoutMs`.
 */
export function readyPort(child: ChildProcess, timeoutMs: number, describe: () => string = () => ""): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no READY line within ${timeoutMs} ms${describe()}`)), timeoutMs);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before it was ready${describe()}`));
    });
  });
}

const TICKS = 100; // USER_HZ on Linux

/** utime + stime of a process, in seconds (0 when it is gone). */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
}

/** Runs ffmpeg quietly (making a test clip, say); rejects with its error output. */
export function runFfmpeg(bin: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, ["-hide_banner", "-loglevel", "error", "-y", ...args], { timeout: 300_000 }, (err, _o, stderr) =>
      err ? reject(new Error(stderr || err.message)) : resolve(),
    );
  });
}
