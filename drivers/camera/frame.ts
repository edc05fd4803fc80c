/** One decoded frame, already scaled and letterboxed to the model's input size by ffmpeg. */
export interface Frame {
  camera_id: string;
  /** Frame number from this camera since the driver started (0, 1, 2, …). */
  index: number;
  width: number;
  height: number;
  /** Packed pixels, `width * height * 3` bytes. */
  format: "rgb24" | "bgr24";
  data: Buffer;
  /** When the last byte of the frame arrived (Date.now()). */
  arrival_ms: number;
  /** The stream's presentation timestamp in ms, when ffmpeg gave one. */
  pts_ms?: number;
  /** How the source picture was placed in the frame: source px = (frame px - pad) / scale. */
  letterbox: { src_width: number; src_height: number; scale: number; pad_x: number; pad_y: number };
}

/**
 * Holds only the newest frame of a camera. When inference is slower than the camera, the older
 * frame is replaced and counted as dropped: nothing queues without bound.
 *
 * Frame buffers can be reused ({@link setRecycler}): a replaced frame goes back at once; a taken
 * one when its taker calls {@link release}, or later if it is still the latest frame. A taker
 * that never calls release only costs an allocation.
 */
export class LatestFrameSlot {
  #frame: Frame | undefined;
  #latest: Frame | undefined;
  #dropped = 0;
  #taken = 0;
  #waiters: (() => void)[] = [];
  #onTaken: (() => void) | undefined;
  #recycler: ((data: Buffer) => void) | undefined;
  /** Taken and not yet released. */
  readonly #inUse = new Set<Frame>();

  /** Called each time a frame is taken: a producer that paused for a full slot resumes here. */
  setTakenListener(fn: (() => void) | undefined): void {
    this.#onTaken = fn;
  }

  /** Where buffers of frames nobody holds any more go (the camera's frame pool). */
  setRecycler(fn: ((data: Buffer) => void) | undefined): void {
    this.#recycler = fn;
  }

  put(frame: Frame): void {
    const old = this.#frame;
    const prevLatest = this.#latest;
    this.#frame = frame;
    this.#latest = frame;
    if (old !== undefined) {
      // Replaced before anyone took it: nobody holds it.
      this.#dropped++;
      this.#recycler?.(old.data);
    } else if (prevLatest !== undefined && prevLatest !== frame && !this.#inUse.has(prevLatest)) {
      // Taken, released while it was still the latest frame, and now no longer the latest.
      this.#recycler?.(prevLatest.data);
    }
    const w = this.#waiters;
    this.#waiters = [];
    for (const wake of w) wake();
  }

  /** Takes the newest frame, leaving the slot empty. Call {@link release} when done with it. */
  take(): Frame | undefined {
    const f = this.#frame;
    this.#frame = undefined;
    if (f !== undefined) {
      this.#taken++;
      this.#inUse.add(f);
      this.#onTaken?.();
    }
    return f;
  }

  /** The taker is done with `frame` (its pixels may be reused after this). */
  release(frame: Frame): void {
    if (!this.#inUse.delete(frame)) return;
    if (frame !== this.#latest) this.#recycler?.(frame.data);
  }

  peek(): Frame | undefined {
    return this.#frame;
  }

  /**
   * The newest frame put, taken or not (the snapshot command reads it). Its pixels may be reused
   * once a newer frame arrives: copy them before waiting on anything.
   */
  get latest(): Frame | undefined {
    return this.#latest;
  }

  /** Frames replaced before anyone took them. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Frames handed out by take(). */
  get taken(): number {
    return this.#taken;
  }

  /** Resolves when a frame is put (at once if one is waiting). */
  next(): Promise<void> {
    if (this.#frame !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
