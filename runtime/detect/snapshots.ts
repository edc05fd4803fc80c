import { mkdir, readdir, rm, stat, unlink } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import type { Frame } from "../../drivers/camera/frame.js";
import { describeWriteError } from "../disk/storageErrors.js";
import { ThrottledLog } from "../disk/throttledLog.js";
import type { Logger } from "../log/logger.js";
import { boxesSvg } from "./draw.js";
import type { ObjectOut } from "./types.js";

export interface SnapshotOptions {
  dir: string;
  intervalMs: number;
  maxBytes: number;
  quality: number;
}

/**
 * Keeps JPEG snapshots of one camera with its detections drawn, at most one per interval,
 * deleting the oldest files when the folder passes its size quota. Writing never blocks the
 * pipeline: a snapshot still being written makes the next one skip.
 */
export class SnapshotStore {
  readonly #o: SnapshotOptions;
  #last = -Infinity;
  #busy: Promise<void> | undefined;
  #written = 0;
  #failed = 0;
  readonly #errors: ThrottledLog;
  #lastError: string | undefined;

  constructor(options: SnapshotOptions, log: Logger) {
    this.#o = options;
    this.#errors = new ThrottledLog(log);
  }

  get written(): number {
    return this.#written;
  }

  /** Takes a snapshot when the interval has passed; returns whether one was started. */
  offer(frame: Frame, objects: readonly ObjectOut[], nowMs: number): boolean {
    if (this.#busy || nowMs - this.#last < this.#o.intervalMs) return false;
    this.#last = nowMs;
    // The frame buffer is reused by nobody, but copy anyway: sharp reads it later.
    const data = Buffer.from(frame.data);
    this.#busy = this.#write(frame, data, [...objects], nowMs)
      .then(
        () => {
          if (this.#lastError !== undefined) this.#errors.success({ camera: frame.camera_id }, "snapshots are written again");
          this.#lastError = undefined;
        },
        (err: unknown) => {
          this.#failed++;
          this.#lastError = describeWriteError(err, this.#o.dir);
          // A full disk fails every snapshot: said once, then once a minute.
          this.#errors.failure({ camera: frame.camera_id, error: this.#lastError }, "snapshot failed");
        },
      )
      .finally(() => {
        this.#busy = undefined;
      });
    return true;
  }

  /** Resolves when the snapshot being written (if any) is on disk. */
  async idle(): Promise<void> {
    await this.#busy;
  }

  async #write(frame: Frame, data: Buffer, objects: ObjectOut[], nowMs: number): Promise<void> {
    await mkdir(this.#o.dir, { recursive: true });
    const lb = frame.letterbox;
    const w = Math.max(1, Math.min(frame.width - lb.pad_x, Math.round(lb.src_width * lb.scale)));
    const h = Math.max(1, Math.min(frame.height - lb.pad_y, Math.round(lb.src_height * lb.scale)));
    let img = sharp(data, { raw: { width: frame.width, height: frame.height, channels: 3 } });
    if (frame.format === "bgr24")
      img = img.recomb([
        [0, 0, 1],
        [0, 1, 0],
        [1, 0, 0],
      ]);
    const cropped = await img.extract({ left: lb.pad_x, top: lb.pad_y, width: w, height: h }).raw().toBuffer();
    const file = path.join(this.#o.dir, `${new Date(nowMs).toISOString().replace(/[:.]/g, "-")}_${frame.index}.jpg`);
    try {
      await sharp(cropped, { raw: { width: w, height: h, channels: 3 } })
        .composite([{ input: boxesSvg(objects, w, h), top: 0, left: 0 }])
        .jpeg({ quality: this.#o.quality })
        .toFile(file);
    } catch (err) {
      // A write cut short (a full disk) leaves a truncated JPEG; it must not pass for a snapshot.
      await rm(file, { force: true });
      throw err;
    }
    this.#written++;
    await this.#enforceQuota();
  }

  async #enforceQuota(): Promise<void> {
    const names = (await readdir(this.#o.dir)).filter((n) => n.endsWith(".jpg"));
    const files = await Promise.all(names.map(async (n) => ({ file: path.join(this.#o.dir, n), ...(await stat(path.join(this.#o.dir, n))) })));
    files.sort((a, b) => a.mtimeMs - b.mtimeMs || a.file.localeCompare(b.file));
    let total = files.reduce((s, f) => s + f.size, 0);
    for (const f of files) {
      if (total <= this.#o.maxBytes) break;
      await unlink(f.file);
      total -= f.size;
    }
  }

  health(): { written: number; failed: number; error?: string } {
    return { written: this.#written, failed: this.#failed, ...(this.#lastError !== undefined ? { error: this.#lastError } : {}) };
  }
}
