/**
 * Frame-sized buffers for one camera, reused once their frame is done with: a camera at 25 fps
 * and model size 416x416 otherwise allocates 13 MB a second outside the JavaScript heap, and V8
 * answers that external memory with a full collection every few frames. The buffers live in
 * shared memory, so an inference worker reads a frame's pixels where they are, without a copy.
 */
export class FramePool {
  readonly bytes: number;
  readonly #max: number;
  readonly #free: Buffer[] = [];
  #allocated = 0;
  #reused = 0;

  constructor(bytes: number, max = 4) {
    this.bytes = bytes;
    this.#max = max;
  }

  /** A buffer of `bytes` bytes, with whatever an earlier frame left in it. */
  acquire(): Buffer {
    const b = this.#free.pop();
    if (b) {
      this.#reused++;
      return b;
    }
    this.#allocated++;
    // A buffer of its own (not a slice of Node's pool), shareable with worker threads.
    return Buffer.from(new SharedArrayBuffer(this.bytes));
  }

  /** Takes a buffer back. Only its last holder may call this, once; foreign sizes are left to the GC. */
  recycle(b: Buffer): void {
    if (b.length !== this.bytes || b.buffer.byteLength !== this.bytes || this.#free.length >= this.#max || this.#free.includes(b)) return;
    this.#free.push(b);
  }

  get stats(): { allocated: number; reused: number; free: number } {
    return { allocated: this.#allocated, reused: this.#reused, free: this.#free.length };
  }
}
