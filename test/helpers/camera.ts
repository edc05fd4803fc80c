import { spawn, execFile, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { Writable } from "node:stream";
import path from "node:path";
import pino from "pino";
import type { Logger } from "../../runtime/log/logger.js";
import type { Camera } from "../../drivers/camera/camera.js";
import type { Frame } from "../../drivers/camera/frame.js";
import { readyPort } from "../../bench/benchProcess.js";
import { REPO_ROOT } from "./sharedData.js";

export const RTSP_SERVER_SCRIPT = path.join(REPO_ROOT, "test/fixtures/camera/rtspServer.py");

/** A real RTSP server (GStreamer via python3-gi) that the test can kill, stop and start again on the same port. */
export class RtspServer {
  readonly #args: string[];
  #child: ChildProcess | undefined;
  port = 0;

  constructor(opts: { clip?: string; pattern?: string; port?: number }) {
    this.#args = opts.clip ? ["--clip", opts.clip] : ["--pattern", opts.pattern ?? "640x360@25"];
    this.port = opts.port ?? 0;
  }

  url(credentials = ""): string {
    return `rtsp://${credentials}127.0.0.1:${this.port}/cam`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the server and resolves once it accepts connections. */
  async start(): Promise<void> {
    const child = spawn("/usr/bin/python3", [RTSP_SERVER_SCRIPT, "--port", String(this.port), ...this.#args], { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    this.port = await readyPort(child, 30_000, () => `; RTSP server: ${err}`);
  }

  /** SIGKILL: the abrupt outage (a camera losing power). Resolves when it is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    await gone;
  }

  signal(sig: NodeJS.Signals): void {
    this.#child?.kill(sig);
  }
}

/** A logger that keeps every line (JSON text) in memory, at debug level, without the daemon's scrubber. */
export function memoryLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(l);
      cb();
    },
  });
  return { log: pino({ level: "debug" }, dest), lines };
}

interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  comm: string;
}

function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const [state, ppid] = stat.slice(close + 2).split(" ");
    return { pid, ppid: Number(ppid), state: state!, comm };
  } catch {
    // The process ended between listing /proc and reading it.
    return undefined;
  }
}

/** Direct children of this process, from /proc. */
export function children(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const p = procInfo(Number(name));
    if (p && p.ppid === process.pid) out.push(p);
  }
  return out;
}

export const zombies = (): ProcInfo[] => children().filter((p) => p.state === "Z");

/**
 * Zombie children that stay zombies. A child that has just exited is a zombie until Node's
 * SIGCHLD handler reaps it a moment later; that is not a leak, so give reaping up to 5 s.
 */
export async function lingeringZombies(graceMs = 5000): Promise<ProcInfo[]> {
  const deadline = Date.now() + graceMs;
  let z = zombies();
  while (z.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    z = zombies();
  }
  return z;
}
export const ffmpegChildren = (): ProcInfo[] => children().filter((p) => p.comm === "ffmpeg" && p.state !== "Z");

/** Open file descriptors of this process, by what they point at. */
export function openFds(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      out.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // The fd used to list the directory is gone by now.
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  const p = procInfo(pid);
  return p !== undefined && p.state !== "Z";
}

/** Polls `cond` until it holds (event-driven waits where no event exists; generous timeouts). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 30_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs ffmpeg to make a fixture; rejects with its stderr. */
export function ffmpeg(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { timeout: 120_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`ffmpeg ${args.join(" ")}: ${stderr}`)) : resolve(),
    );
  });
}

/** The pixel at (x, y) of a packed 3-byte frame. */
export function pixel(data: Buffer, width: number, x: number, y: number): [number, number, number] {
  const i = (y * width + x) * 3;
  return [data[i]!, data[i + 1]!, data[i + 2]!];
}

/** Collects the camera's next `n` frames, taking each as it arrives. */
export async function takeFrames(cam: Pick<Camera, "slot">, n: number): Promise<Frame[]> {
  const out: Frame[] = [];
  while (out.length < n) {
    await cam.slot.next();
    const f = cam.slot.take();
    if (f) out.push(f);
  }
  return out;
}
