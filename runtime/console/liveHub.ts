import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import sharp from "sharp";
import { WebSocketServer, type WebSocket } from "ws";
import type { Frame } from "../../drivers/camera/frame.js";
import type { Geometry } from "../detect/draw.js";
import { framePicture } from "../detect/picture.js";
import { RecentObjects } from "../detect/recentObjects.js";
import type { DetectionObserver, LineTally, ObjectOut, PipelineInfo } from "../detect/types.js";
import type { CountsBody } from "../contract/index.js";
import type { DaemonBus } from "../events/events.js";
import type { Logger } from "../log/logger.js";
import type { Metrics } from "../metrics.js";
import type { Part, PartHealth } from "../part.js";

/** What a viewer is told about a camera when it connects, and again when its pipeline restarts: enough to draw the overlay. */
export interface CameraInfo extends PipelineInfo {
  id: string;
  /** Whether the camera's pipeline runs now (false while it restarts). */
  running: boolean;
}

/** The hub in health: who watches which camera, live pictures sent and skipped (the encoder busy: the next frame is not queued). */
export type ConsoleHealth = PartHealth & { viewers: Record<string, number>; pictures_sent: number; pictures_skipped: number };

export interface LiveHubOptions {
  /** Counts messages come from here. */
  bus: DaemonBus;
  log: Logger;
  metrics?: Metrics;
  /** JPEG quality of the live pictures. */
  quality?: number;
}

interface Viewer {
  ws: WebSocket;
  cameraId: string;
  sent: number;
  skipped: number;
}

interface Feed {
  viewers: Set<Viewer>;
  /** A picture being encoded: the next frames are skipped until it is done, never queued. */
  encoding: boolean;
  encoded: number;
  skipped: number;
  lastCounts?: CountsBody;
}

/** A viewer this far behind (a slow link) is skipped until it catches up. */
const MAX_BUFFERED = 1024 * 1024;

/**
 * What detection finds, watched: the boxes of each camera's last frames and what its pipeline
 * runs with (for pictures at the camera's resolution, the snapshot command and the console),
 * and the console's live view. While someone watches a camera, each frame detection handles is
 * encoded as a JPEG (the letterbox cropped away) and sent in ONE WebSocket message with that
 * frame's detections, so the boxes drawn over the picture are those of the very frame shown:
 * they cannot drift. Counts messages and the running crossings of the interval go the same
 * way. An unwatched camera costs nothing beyond a map lookup per frame.
 *
 * Binary messages: a 4-byte little-endian header length, the header (JSON), the JPEG.
 * Text messages: JSON `{type: "hello" | "counts", …}`.
 */
export class LiveHub implements Part, DetectionObserver {
  readonly name = "watch";
  readonly kind = "console";
  readonly #o: LiveHubOptions;
  readonly #feeds = new Map<string, Feed>();
  readonly #infos = new Map<string, CameraInfo>();
  /** The objects of each camera's last frames. */
  readonly recent = new RecentObjects();
  #wss: WebSocketServer | undefined;
  #off: (() => void) | undefined;

  constructor(o: LiveHubOptions) {
    this.#o = o;
  }

  async start(): Promise<void> {
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
    this.#off = this.#o.bus.on("counts", (b) => this.#counts(b));
  }

  async stop(): Promise<void> {
    this.#off?.();
    this.#off = undefined;
    for (const f of this.#feeds.values()) for (const v of f.viewers) v.ws.terminate();
    this.#feeds.clear();
    const wss = this.#wss;
    this.#wss = undefined;
    if (wss) await new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  health(): ConsoleHealth {
    const viewers: Record<string, number> = {};
    let encoded = 0;
    let skipped = 0;
    for (const [id, f] of this.#feeds) {
      if (f.viewers.size > 0) viewers[id] = f.viewers.size;
      encoded += f.encoded;
      skipped += f.skipped;
    }
    return { state: this.#wss ? "running" : "stopped", viewers, pictures_sent: encoded, pictures_skipped: skipped };
  }

  /** What each camera's pipeline runs with (the last it started with), by camera id. */
  get cameras(): ReadonlyMap<string, CameraInfo> {
    return this.#infos;
  }

  /** The lines and zones a camera's pipeline counts with. */
  geometry(cameraId: string): Geometry | undefined {
    return this.#infos.get(cameraId);
  }

  started(cameraId: string, info: PipelineInfo): void {
    const camera: CameraInfo = { id: cameraId, running: true, ...info };
    this.#infos.set(cameraId, camera);
    // Viewers already watching see the new lines and zones at once.
    const feed = this.#feeds.get(cameraId);
    if (feed) for (const v of feed.viewers) if (v.ws.readyState === v.ws.OPEN) v.ws.send(JSON.stringify({ type: "hello", camera }));
  }

  stopped(cameraId: string): void {
    const info = this.#infos.get(cameraId);
    if (info) this.#infos.set(cameraId, { ...info, running: false });
  }

  /** Viewers of a camera now. */
  viewers(cameraId: string): number {
    return this.#feeds.get(cameraId)?.viewers.size ?? 0;
  }

  /** The upgrade of `/api/cameras/<id>/live` (already authenticated, Origin checked). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cameraId: string): void {
    const wss = this.#wss;
    const info = this.#infos.get(cameraId);
    if (!wss || !info) {
      const known = [...this.#infos.keys()].join(", ") || "none";
      socket.end(
        `HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-type: text/plain\r\n\r\nno live camera "${cameraId}" (cameras with detection: ${known})\n`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => this.#attach(ws, info));
  }

  #feed(cameraId: string): Feed {
    let f = this.#feeds.get(cameraId);
    if (!f) this.#feeds.set(cameraId, (f = { viewers: new Set(), encoding: false, encoded: 0, skipped: 0 }));
    return f;
  }

  #attach(ws: WebSocket, info: CameraInfo): void {
    const feed = this.#feed(info.id);
    const viewer: Viewer = { ws, cameraId: info.id, sent: 0, skipped: 0 };
    feed.viewers.add(viewer);
    this.#o.log.info({ camera: info.id, viewers: feed.viewers.size }, "console viewer connected");
    ws.on("error", (err) => this.#o.log.debug({ camera: info.id, err: err.message }, "console viewer socket error"));
    ws.on("close", () => {
      feed.viewers.delete(viewer);
      this.#o.log.info({ camera: info.id, viewers: feed.viewers.size }, "console viewer left");
    });
    // Viewers only listen; anything they send is ignored.
    ws.on("message", () => undefined);
    ws.send(JSON.stringify({ type: "hello", camera: this.#infos.get(info.id) ?? info }));
    if (feed.lastCounts) ws.send(JSON.stringify({ type: "counts", camera_id: info.id, body: feed.lastCounts }));
  }

  frame(cameraId: string, frame: Frame, objects: readonly ObjectOut[], running: () => LineTally[]): void {
    this.recent.frame(cameraId, frame, objects);
    const feed = this.#feeds.get(cameraId);
    if (!feed || feed.viewers.size === 0) return;
    if (feed.encoding) {
      feed.skipped++;
      return;
    }
    feed.encoding = true;
    // The pixels go back to the camera's pool when this returns: copy what the encoder reads.
    const copy: Frame = { ...frame, data: Buffer.from(frame.data) };
    const header = {
      type: "frame",
      camera_id: cameraId,
      frame: frame.index,
      frame_ts: frame.arrival_ms,
      ...(frame.pts_ms !== undefined ? { pts_ms: Math.round(frame.pts_ms) } : {}),
      src_width: frame.letterbox.src_width,
      src_height: frame.letterbox.src_height,
      objects: objects.map((o) => ({
        label: o.label,
        class_id: o.class_id,
        score: Math.round(o.score * 1000) / 1000,
        box: [o.x1, o.y1, o.x2, o.y2].map((v) => Math.round(v * 10_000) / 10_000),
        ...(o.track_id !== undefined ? { track_id: o.track_id } : {}),
      })),
      running: running(),
    };
    void this.#encodeAndSend(feed, copy, header).finally(() => {
      feed.encoding = false;
    });
  }

  async #encodeAndSend(feed: Feed, frame: Frame, header: Record<string, unknown>): Promise<void> {
    try {
      const t0 = performance.now();
      const { data, width, height } = await framePicture(frame);
      const jpeg = await sharp(data, { raw: { width, height, channels: 3 } })
        .jpeg({ quality: this.#o.quality ?? 70 })
        .toBuffer();
      this.#o.metrics?.histogram("cityedge_console_encode_seconds").observe((performance.now() - t0) / 1000);
      const head = Buffer.from(JSON.stringify({ ...header, width, height }), "utf8");
      const len = Buffer.alloc(4);
      len.writeUInt32LE(head.length);
      const msg = Buffer.concat([len, head, jpeg]);
      feed.encoded++;
      for (const v of feed.viewers) {
        if (v.ws.readyState !== v.ws.OPEN) continue;
        if (v.ws.bufferedAmount > MAX_BUFFERED) {
          v.skipped++;
          continue;
        }
        v.ws.send(msg, { binary: true });
        v.sent++;
      }
    } catch (err) {
      this.#o.log.warn({ err, camera: frame.camera_id }, "console live picture could not be encoded");
    }
  }

  #counts(body: CountsBody): void {
    const cameraId = body.camera_id;
    const feed = this.#feed(cameraId);
    feed.lastCounts = body;
    if (feed.viewers.size === 0) return;
    const text = JSON.stringify({ type: "counts", camera_id: cameraId, body });
    // Listeners' errors reach the emitter (the pipeline): a viewer's socket must not.
    try {
      for (const v of feed.viewers) if (v.ws.readyState === v.ws.OPEN) v.ws.send(text);
    } catch (err) {
      this.#o.log.warn({ err, camera: cameraId }, "counts could not be sent to a console viewer");
    }
  }
}
