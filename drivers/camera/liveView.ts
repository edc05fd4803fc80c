import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { DEFAULT_CAMERA_BACKOFF, type CameraConfig, type LiveViewConfig } from "../../runtime/config/sections/cameras.js";
import type { Logger } from "../../runtime/log/logger.js";
import type { Part, PartHealth, PartSignals } from "../../runtime/part.js";
import { ffmpegCaps, resolveFfmpeg, type FfmpegCaps } from "./ffmpegBinary.js";
import { FfmpegRunner } from "./ffmpegRunner.js";
import { cameraInput } from "./hiddenInput.js";
import type { CameraSource } from "./source.js";

export interface LiveViewOptions {
  log: Logger;
  /** The cameras that can be watched, by id. */
  sources: Map<string, CameraSource>;
  /** Each camera's reconnect delays (its `backoff` settings); a camera not named here gets the schema's defaults. */
  backoff?: Map<string, CameraConfig["backoff"]>;
  ffmpegPath?: string;
  /** Overrides cfg.port (0 picks a free port; tests use it). */
  port?: number;
  /** Where a run's input file goes when a url has credentials (see hiddenInput.ts). */
  runDir?: string;
}

/** A viewer that lags this far behind gets no more data until it catches up (it never queues without bound). */
const MAX_BUFFERED = 4 * 1024 * 1024;

interface Feed {
  id: string;
  viewers: Set<WebSocket>;
  runner: FfmpegRunner<undefined>;
}

/** The camera schema's own reconnect defaults, for a camera whose settings were not passed. */
const DEFAULT_BACKOFF = DEFAULT_CAMERA_BACKOFF;

/** The live view in health: its port, viewers per camera, and the ffmpeg feeds running. */
export type LiveViewHealth = PartHealth & { port: number; viewers: Record<string, number>; feeds: number };

/**
 * Browser live view: MPEG-1 in MPEG-TS over WebSocket, the format jsmpeg plays, at
 * ws://host:port/cameras/<camera_id>. Each camera's ffmpeg starts when its first viewer connects
 * and stops when the last one leaves, so an unwatched camera costs nothing.
 */
export class LiveView implements Part {
  readonly name = "live-view";
  readonly kind = "live-view";
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
    return this.#feeds.get(cameraId)?.runner.current?.child.pid;
  }

  async start(signals?: PartSignals): Promise<void> {
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
    server.on("error", (err) => {
      this.#log.error({ err }, "live view server error");
      signals?.died(new Error(`live view server: ${err.message}`));
    });
    this.#log.info({ url: `ws://${this.#cfg.host}:${this.port}/cameras/<id>`, cameras: [...this.#opts.sources.keys()] }, "live view listening");
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const ws of this.#wss?.clients ?? []) ws.terminate();
    await Promise.all([...this.#feeds.values()].map((f) => f.runner.stop()));
    this.#feeds.clear();
    this.#wss?.close();
    const server = this.#server;
    this.#server = this.#wss = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  health(): LiveViewHealth {
    const viewers: Record<string, number> = {};
    for (const f of this.#feeds.values()) if (f.viewers.size > 0) viewers[f.id] = f.viewers.size;
    return {
      state: this.#server ? "running" : "stopped",
      port: this.port,
      viewers,
      feeds: [...this.#feeds.values()].filter((f) => f.runner.current).length,
    };
  }

  #onViewer(id: string, ws: WebSocket): void {
    let feed = this.#feeds.get(id);
    if (!feed) {
      feed = { id, viewers: new Set(), runner: this.#runner(id) };
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
    // A feed whose last viewer just left may still be stopping; the runner starts again after that.
    if (!f.runner.active) void f.runner.start();
  }

  /** One camera's live ffmpeg: it runs while someone watches, and is restarted with the camera's backoff when it ends. */
  #runner(id: string): FfmpegRunner<undefined> {
    const source = this.#opts.sources.get(id)!;
    const backoff = this.#opts.backoff?.get(id) ?? DEFAULT_BACKOFF;
    const c = this.#cfg;
    const args = (inputArgs: string[]): string[] => [
      "-hide_banner",
      "-nostats",
      "-loglevel",
      "warning",
      ...inputArgs,
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
    const viewers = () => this.#feeds.get(id)?.viewers ?? new Set<WebSocket>();
    return new FfmpegRunner<undefined>({
      bin: this.#bin!,
      log: this.#log.child({ camera: id }),
      backoff: { initial_ms: backoff.initial_ms, max_ms: backoff.max_ms },
      stop: { quitMs: 500, termMs: 1500 },
      prepare: () => {
        this.#log.info({ camera: id }, "live view ffmpeg starting");
        const input = cameraInput(source, this.#caps!, this.#opts.runDir);
        return { args: args(input.args), state: undefined, release: input.release };
      },
      onStdout: (_run, chunk) => {
        for (const ws of viewers()) if (ws.readyState === ws.OPEN && ws.bufferedAmount < MAX_BUFFERED) ws.send(chunk, { binary: true });
      },
      onStderr: (_run, p) => {
        if (p.kind === "error" || p.kind === "other") this.#log.debug({ camera: id, ffmpeg: p.text }, "live view ffmpeg");
      },
      onEnd: (run, end) => {
        if (this.#stopped || viewers().size === 0) return { retry: false };
        this.#log.warn(
          { camera: id, code: end.code, signal: end.signal, error: end.error ?? run?.errorLines.at(-1) },
          "live view ffmpeg ended while watched; restarting",
        );
        return { retry: true, recovered: run !== undefined && Date.now() - run.startedAt > backoff.reset_after_ms };
      },
      onRetry: (delay) => this.#log.info({ camera: id, retry_in_ms: delay }, "live view ffmpeg restart scheduled"),
    });
  }

  async #stopFeed(feed: Feed): Promise<void> {
    const how = await feed.runner.stop();
    if (how) this.#log.info({ camera: feed.id, how }, "live view ffmpeg stopped (no viewers)");
  }
}
