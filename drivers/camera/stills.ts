/** A JPEG of one frame at the camera's own resolution, written by the camera's ffmpeg beside the model-size frames. */
export interface Still {
  jpeg: Buffer;
  /** The camera frame (Frame.index) it is a picture of. */
  frameIndex: number;
  width: number;
  height: number;
  /** When it arrived (Date.now()). */
  at_ms: number;
}

/** Markers with no length field after them: SOI, EOI, RST0..7 and TEM. */
const standalone = (m: number): boolean => m === 0xd8 || m === 0xd9 || (m >= 0xd0 && m <= 0xd7) || m === 0x01;

/**
 * Cuts a stream of concatenated JPEGs (ffmpeg's `-f image2pipe -c:v mjpeg`) into images by
 * walking the markers, so table bytes that happen to read 0xFF 0xD9 never end an image early.
 * A stream that stops making sense is resynchronised at the next start-of-image marker.
 */
export class JpegSplitter {
  readonly #onImage: (jpeg: Buffer) => void;
  readonly #maxBytes: number;
  #buf: Buffer = Buffer.alloc(0);
  /** Where parsing resumes in #buf, and whether it is inside entropy-coded data. */
  #pos = 0;
  #inScan = false;
  #started = false;
  #dropped = 0;

  constructor(onImage: (jpeg: Buffer) => void, maxBytes = 32 * 1024 * 1024) {
    this.#onImage = onImage;
    this.#maxBytes = maxBytes;
  }

  /** Bytes thrown away while looking for the start of an image. */
  get dropped(): number {
    return this.#dropped;
  }

  push(chunk: Buffer): void {
    // A copy: the reader reuses its buffer for the next chunk.
    this.#buf = Buffer.concat([this.#buf, chunk]);
    for (;;) {
      if (!this.#started && !this.#findStart()) return;
      const end = this.#findEnd();
      if (end === undefined) {
        if (this.#buf.length > this.#maxBytes) this.#resync(1);
        return;
      }
      this.#onImage(this.#buf.subarray(0, end));
      this.#buf = this.#buf.subarray(end);
      this.#started = false;
      this.#pos = 0;
      this.#inScan = false;
    }
  }

  #findStart(): boolean {
    const i = this.#buf.indexOf(Buffer.from([0xff, 0xd8]));
    if (i < 0) {
      // Keep a trailing 0xFF: it may begin the next marker.
      const keep = this.#buf.at(-1) === 0xff ? 1 : 0;
      this.#dropped += this.#buf.length - keep;
      this.#buf = this.#buf.subarray(this.#buf.length - keep);
      return false;
    }
    this.#dropped += i;
    this.#buf = this.#buf.subarray(i);
    this.#started = true;
    this.#pos = 2;
    this.#inScan = false;
    return true;
  }

  #resync(from: number): void {
    this.#dropped += from;
    this.#buf = this.#buf.subarray(from);
    this.#started = false;
  }

  /** The length of the complete image at the start of #buf, or undefined when more bytes are needed. */
  #findEnd(): number | undefined {
    const b = this.#buf;
    let p = this.#pos;
    for (;;) {
      if (this.#inScan) {
        // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte) or RSTn, else it is a marker.
        for (;;) {
          const ff = b.indexOf(0xff, p);
          if (ff < 0 || ff + 1 >= b.length) {
            this.#pos = ff < 0 ? b.length : ff;
            return undefined;
          }
          const m = b[ff + 1]!;
          if (m === 0x00 || (m >= 0xd0 && m <= 0xd7) || m === 0xff) {
            p = m === 0xff ? ff + 1 : ff + 2;
            continue;
          }
          this.#inScan = false;
          p = ff;
          break;
        }
      }
      if (p + 1 >= b.length) {
        this.#pos = p;
        return undefined;
      }
      if (b[p] !== 0xff) {
        this.#resync(1);
        return this.#findStart() ? this.#findEnd() : undefined;
      }
      const m = b[p + 1]!;
      if (m === 0xff) {
        p++;
        continue;
      }
      if (m === 0xd9) return p + 2;
      if (standalone(m)) {
        p += 2;
        continue;
      }
      if (p + 3 >= b.length) {
        this.#pos = p;
        return undefined;
      }
      const len = b.readUInt16BE(p + 2);
      if (p + 2 + len > b.length) {
        this.#pos = p;
        return undefined;
      }
      p += 2 + len;
      if (m === 0xda) this.#inScan = true;
    }
  }
}
