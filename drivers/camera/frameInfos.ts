import type { FrameInfo } from "./ffmpegLog.js";

/**
 * What showinfo said about the frames of one ffmpeg run, by frame number within the run. ffmpeg
 * builds a new filter graph when the input size changes, and its showinfo counts from 0 again
 * (perhaps at the old one's address); the frame numbers here keep counting on.
 */
export class FrameInfos {
  readonly #byFrame = new Map<number, FrameInfo>();
  #graph: string | undefined;
  #base = 0;
  #lastN = -1;
  /** The newest info handed out, for a frame whose own line never came. */
  last: FrameInfo | undefined;

  /** Records a showinfo report; returns the frame number it belongs to. */
  add(info: FrameInfo): number {
    if (this.#graph !== info.graph || info.n <= this.#lastN) {
      if (this.#graph !== undefined) this.#base += this.#lastN + 1;
      this.#graph = info.graph;
    }
    this.#lastN = info.n;
    const frame = this.#base + info.n;
    this.#byFrame.set(frame, info);
    // showinfo runs ahead of stdout by at most a few frames; anything older is stale.
    if (this.#byFrame.size > 64) for (const k of this.#byFrame.keys()) if (k < frame - 32) this.#byFrame.delete(k);
    return frame;
  }

  has(frame: number): boolean {
    return this.#byFrame.has(frame);
  }

  /** The frame's own info (removed from the map), or undefined when its line never came. */
  take(frame: number): FrameInfo | undefined {
    const own = this.#byFrame.get(frame);
    this.#byFrame.delete(frame);
    if (own) this.last = own;
    return own;
  }
}
