import { spawnSync } from "node:child_process";
import { closeSync, constants, openSync, unlinkSync } from "node:fs";
import { Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { sweepDeadProcessFiles } from "./staleFiles.js";

let serial = 0;
let swept = false;
const NAME = /^cityedge-(\d+)-\d+-[0-9a-z]+\.fifo$/;

/**
 * ffmpeg's raw frames through a named pipe, read into one buffer that is reused for every read.
 * Read from a child's stdout, each read is a new 64 KiB buffer outside the JavaScript heap, several
 * per frame, and at detection rates V8 answers that allocation with frequent full mark-compacts
 * that take the event loop's time (figures in docs/benchmarks.md, "detect").
 *
 * The FIFO gets a second handle of ours, opened read-write, until ffmpeg has opened its end: a
 * FIFO read with no writer at all reads as end-of-file. Once ffmpeg writes, that handle closes
 * and the path is unlinked, so the stream ends exactly when ffmpeg closes its end, after every
 * byte it wrote has been read.
 */
export class FifoReader {
  readonly path: string;
  readonly socket: Socket;
  #keeper: number | undefined;
  #unlinked = false;

  private constructor(file: string, keeper: number, reader: number, onData: (chunk: Buffer) => void) {
    this.path = file;
    this.#keeper = keeper;
    const buffer = Buffer.allocUnsafe(256 * 1024);
    const onread = {
      buffer,
      callback: (n: number, buf: Buffer) => {
        this.writerOpened();
        onData(buf.subarray(0, n));
        return true;
      },
    };
    // `onread` is in Node's net.Socket options but not in its type definitions.
    this.socket = new Socket({ fd: reader, readable: true, writable: false, ...({ onread } as object) });
  }

  /** A FIFO in the temp folder and its reader, or undefined where FIFOs cannot be made (no mkfifo). */
  static create(onData: (chunk: Buffer) => void): FifoReader | undefined {
    if (!swept) {
      swept = true;
      FifoReader.sweepStale(os.tmpdir());
    }
    const file = path.join(os.tmpdir(), `cityedge-${process.pid}-${++serial}-${Math.random().toString(36).slice(2, 8)}.fifo`);
    const made = spawnSync("mkfifo", ["-m", "600", file]);
    if (made.status !== 0) return undefined;
    try {
      const keeper = openSync(file, constants.O_RDWR | constants.O_NONBLOCK);
      const reader = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
      return new FifoReader(file, keeper, reader, onData);
    } catch {
      try {
        unlinkSync(file);
      } catch {
        // already gone
      }
      return undefined;
    }
  }

  /**
   * Removes the FIFOs a killed daemon left behind in `dir`: its path is unlinked as soon as ffmpeg
   * writes, but a process killed (SIGKILL, power cut) before that cannot clean up. Only FIFOs named
   * by this class whose process is gone are removed. Returns the paths removed.
   */
  static sweepStale(dir: string): string[] {
    return sweepDeadProcessFiles(dir, NAME, (st) => st.isFIFO());
  }

  /** ffmpeg has its end open (it wrote), or will never open it (it exited): the stream may end with it. */
  writerOpened(): void {
    if (this.#keeper !== undefined) {
      closeSync(this.#keeper);
      this.#keeper = undefined;
    }
    if (!this.#unlinked) {
      this.#unlinked = true;
      try {
        unlinkSync(this.path);
      } catch {
        // already gone
      }
    }
  }

  close(): void {
    this.writerOpened();
    this.socket.destroy();
  }
}
