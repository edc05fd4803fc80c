/**
 * Cuts ffmpeg's raw video pipe into frames of a fixed byte size. Each byte is copied once, from
 * the pipe's chunk into the frame's own buffer, so a frame never pins the pipe's chunks.
 */
export class FrameCutter {
  readonly #frameBytes: number;
  readonly #onFrame: (data: Buffer) => void;
  readonly #alloc: () => Buffer;
  #current: Buffer | undefined;
  #filled = 0;

  /** `alloc` gives each frame's buffer (a {@link FramePool}'s, to reuse them); default a new one each time. */
  constructor(frameBytes: number, onFrame: (data: Buffer) => void, alloc?: () => Buffer) {
    if (!Number.isInteger(frameBytes) || frameBytes <= 0) throw new Error(`frame size must be a positive whole number of bytes, got ${frameBytes}`);
    this.#frameBytes = frameBytes;
    this.#onFrame = onFrame;
    // allocUnsafeSlow: a frame-sized buffer of its own, not a slice of Node's shared pool.
    this.#alloc = alloc ?? (() => Buffer.allocUnsafeSlow(frameBytes));
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      this.#current ??= this.#alloc();
      const n = chunk.copy(this.#current, this.#filled, offset, Math.min(chunk.length, offset + this.#frameBytes - this.#filled));
      this.#filled += n;
      offset += n;
      if (this.#filled === this.#frameBytes) {
        const frame = this.#current;
        this.#current = undefined;
        this.#filled = 0;
        this.#onFrame(frame);
      }
    }
  }

  /** Bytes of an unfinished frame (left over when ffmpeg exits mid-frame; they are discarded). */
  get pending(): number {
    return this.#filled;
  }

  reset(): void {
    this.#current = undefined;
    this.#filled = 0;
  }
}
