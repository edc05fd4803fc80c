import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import type { LiveViewConfig } from "../../runtime/config/sections/cameras.js";
import { redactUrl, type Logger } from "../../runtime/log/logger.js";
import type { Part, PartHealth } from "../../runtime/part.js";
import { Backoff } from "./backoff.js";
import { ffmpegCaps, resolveFfmpeg, type FfmpegCaps } from "./ffmpegBinary.js";
import { LineSplitter, parseStderrLine } from "./ffmpegLog.js";
import type { CameraSource } from "./source.js";
import { stopFfmpeg } from "./stopFfmpeg.js";

export interface LiveViewOptions {
  log: Logger;
  /** The cameras that can be watched, by id. */
  sources: Map<string, CameraSource>;
  ffmpegPath?: string;
  /** Overrides cfg.port (0 picks a free port; tests use it). */
  port?: number;
}

/** A viewer that lags this far behind gets no more data until it catches up (it never queues without bound). */
const MAX_BUFFERED = 4 * 1024 * 1024;

interface Feed {
  id: string;
  viewers: Set<WebSocket>;
  child?: ChildProcess;
  stopping?: Promise<unknown>;
  retry?: NodeJS.Timeout;
  backoff: Backoff;
  lastError?: string;
}

/**
 * Browser live view: MPEG-1 in MPEG-TS over WebSocket, the format jsmpeg plays, at
 * ws://host:port/cameras/<camera_id>. Each camera's ffmpeg starts when its first viewer connects
 * and stops when the last one leaves, so an unwatched camera costs nothing.
 */
export class LiveView implements Part {
  readonly name = "live-view";
  readonly #cfg: LiveViewConfig;
  readonly #opts: LiveViewOptions;
  readonly #log: Logger;
  readonly #feeds = new Map<string, Feed>();
  #server: http.Server | undefined;
  #wss: WebSocketServer | undefined;
  #bin: string | undefined;
  #caps: FfmpegCaps | undefined;
  #stopped = false;

  constructor(cfg: LiveViewConfig, opts: LiveViewOptions) {
    this.#cfg = cfg;
    this.#opts = opts;
    this.#log = opts.log;
  }

  /** The bound port (after start). */
  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? 0;
  }

  /** The pid of a camera's live ffmpeg, while someone watches it. */
  feedPid(cameraId: string): number | undefined {
    return this.#feeds.get(cameraId)?.child?.pid;
  }

  async start(): Promise<void> {
    this.#stopped = false;
    this.#bin = resolveFfmpeg(this.#opts.ffmpegPath).path;
    this.#caps = await ffmpegCaps(this.#bin);
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    this.#wss = wss;
    const server = http.createServer((req, res) => {
      res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/plain; charset=utf-8" });
      const ids = [...this.#opts.sources.keys()];
      res.end(`cityedge live view: connect jsmpeg to ws://HOST:${this.port}/cameras/<id>\ncameras: ${ids.join(", ") || "none"}\n`);
    });
    server.on("upgrade", (req, socket, head) => {
      const id = /^\/cameras\/([^/?#]+)$/.exec((req.url ?? "").split("?")[0] ?? "")?.[1];
      if (id === undefined || !this.#opts.sources.has(decodeURIComponent(id)) || this.#stopped) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => this.#onViewer(decodeURIComponent(id), ws));
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#opts.port ?? this.#cfg.port, this.#cfg.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (err) => this.#log.error({ err }, "live view server error"));
    this.#log.info({ url: `ws://${this.#cfg.host}:${this.port}/cameras/<id>`, cameras: [...this.#opts.sources.keys()] }, "live view listening");
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const ws of this.#wss?.clients ?? []) ws.terminate();
    await Promise.all([...this.#feeds.values()].map((f) => this.#stopFeed(f)));
    this.#feeds.clear();
    this.#wss?.close();
    const server = this.#server;
    this.#server = this.#wss = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  health(): PartHealth {
    const viewers: Record<string, number> = {};
    for (const f of this.#feeds.values()) if (f.viewers.size > 0) viewers[f.id] = f.viewers.size;
    return { state: this.#server ? "running" : "stopped", port: this.port, viewers, feeds: [...this.#feeds.values()].filter((f) => f.child).length };
  }

  #onViewer(id: string, ws: WebSocket): void {
    let feed = this.#feeds.get(id);
    if (!feed) {
      feed = { id, viewers: new Set(), backoff: new Backoff({ initial_ms: 1000, max_ms: 30_000 }) };
      this.#feeds.set(id, feed);
    }
    const f = feed;
    f.viewers.add(ws);
    this.#log.info({ camera: id, viewers: f.viewers.size }, "live viewer connected");
    ws.on("error", (err) => this.#log.debug({ camera: id, err: err.message }, "live viewer socket error"));
    ws.on("close", () => {
      f.viewers.delete(ws);
      this.#log.info({ camera: id, viewers: f.viewers.size }, "live viewer left");
      if (f.viewers.size === 0) void this.#stopFeed(f);
    });
    if (!f.child && !f.retry) void this.#startFeed(f);
  }

  async #startFeed(feed: Feed): Promise<void> {
    feed.retry = undefined;
    // A feed whose last viewer just left may still be stopping; a new viewer waits for that.
    if (feed.stopping) await feed.stopping;
    if (this.#stopped || feed.viewers.size === 0 || feed.child) return;
    const source = this.#opts.sources.get(feed.id)!;
    const c = this.#cfg;
    const args = [
      "-hide_banner",
      "-nostats",
      "-loglevel",
      "warning",
      ...source.inputArgs(this.#caps!),
      "-map",
      "0:v:0",
      "-an",
      "-vf",
      `scale=${c.width}:-2`,
      "-r",
      String(c.fps),
      "-f",
      "mpegts",
      "-codec:v",
      "mpeg1video",
      "-b:v",
      `${c.bitrate_kbps}k`,
      "-bf",
      "0",
      "pipe:1",
    ];
    const child = spawn(this.#bin!, args, { stdio: ["pipe", "pipe", "pipe"] });
    feed.child = child;
    const startedAt = Date.now();
    this.#log.info({ camera: feed.id, pid: child.pid }, "live view ffmpeg started");
    child.stdout!.on("data", (chunk: Buffer) => {
      for (const ws of feed.viewers) if (ws.readyState === ws.OPEN && ws.bufferedAmount < MAX_BUFFERED) ws.send(chunk, { binary: true });
    });
    const lines = new LineSplitter((line) => {
      const p = parseStderrLine(line);
      if (p.kind === "error") feed.lastError = p.text;
      if (p.kind === "error" || p.kind === "other") this.#log.debug({ camera: feed.id, ffmpeg: p.text }, "live view ffmpeg");
    });
    child.stderr!.on("data", (chunk: Buffer) => lines.push(chunk));
    child.stdin!.on("error", (err) => this.#log.debug({ err: err.message }, "live view ffmpeg stdin closed"));
    child.on("error", (err) => this.#log.error({ camera: feed.id, err: redactUrl(err.message) }, "live view ffmpeg cannot run"));
    child.on("close", (code, signal) => {
      lines.flush();
      if (feed.child !== child) return;
      feed.child = undefined;
      if (this.#stopped || feed.viewers.size === 0) return;
      if (Date.now() - startedAt > 60_000) feed.backoff.reset();
      const delay = feed.backoff.next();
      this.#log.warn(
        { camera: feed.id, code, signal, error: feed.lastError, retry_in_ms: delay },
        "live view ffmpeg ended while watched; restarting",
      );
      feed.retry = setTimeout(() => void this.#startFeed(feed), delay);
    });
  }

  async #stopFeed(feed: Feed): Promise<void> {
    clearTimeout(feed.retry);
    feed.retry = undefined;
    const child = feed.child;
    if (!child) {
      // Already being stopped (say, by the last viewer leaving): wait for that to finish.
      if (feed.stopping) await feed.stopping;
      return;
    }
    feed.child = undefined;
    const stopping = stopFfmpeg(child, { quitMs: 500, termMs: 1500 });
    feed.stopping = stopping;
    const how = await stopping;
    if (feed.stopping === stopping) feed.stopping = undefined;
    this.#log.info({ camera: feed.id, how }, "live view ffmpeg stopped (no viewers)");
  }
}
