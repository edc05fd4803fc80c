import { redactUrl } from "../../runtime/log/logger.js";

/** What showinfo said about one frame that left the rate limiter. */
export interface FrameInfo {
  /** Frame number within this filter graph (0, 1, …), the same order as frames on stdout. */
  n: number;
  /** Which filter graph said it: ffmpeg builds a new one (and n starts at 0 again) when the input size changes. */
  graph: string;
  /** Stream time in ms, when the stream has timestamps. */
  pts_ms?: number;
  src_width: number;
  src_height: number;
}

export type StderrLine =
  { kind: "frame"; info: FrameInfo } | { kind: "error"; text: string; corrupt: boolean } | { kind: "other"; text: string } | { kind: "skip" };

const SHOWINFO = /\[Parsed_showinfo_\d+ @ ([^\]]+)\] n:\s*(\d+) pts:\s*(\S+)\s+pts_time:(\S+).*?\ss:(\d+)x(\d+)\s/;
const SHOWINFO_OTHER = /^\[Parsed_showinfo_\d+ @/;
/** Decoder reports of damaged input: the frame is concealed or dropped, and counted. */
const CORRUPT =
  /error while decoding|corrupt|concealing \d+|Invalid NAL|decode_slice_header error|non-existing PPS|missing picture in access unit|illegal (short )?term|Invalid data found when processing input|top block unavailable|left block unavailable|cabac decode|mb_type \d+ in/i;
const ERROR =
  /error|failed|invalid|refused|timed out|timeout|not found|denied|unauthori[sz]ed|no such|unable|could not|cannot|unknown (decoder|encoder|input format)|unrecognized option|broken pipe|server returned/i;
/** Lines that are noise at any log level. */
const NOISE = /^-vsync is deprecated|^Press \[q\] to stop|^\s*$/;

/** Sorts one line of ffmpeg's stderr; error text comes back without credentials. */
export function parseStderrLine(line: string): StderrLine {
  const m = SHOWINFO.exec(line);
  if (m) {
    const ptsTime = Number(m[4]);
    const info: FrameInfo = { n: Number(m[2]), graph: m[1]!, src_width: Number(m[5]), src_height: Number(m[6]) };
    if (m[3] !== "NOPTS" && Number.isFinite(ptsTime)) info.pts_ms = Math.round(ptsTime * 1000);
    return { kind: "frame", info };
  }
  if (SHOWINFO_OTHER.test(line) || NOISE.test(line)) return { kind: "skip" };
  const text = redactUrl(line.trim());
  if (CORRUPT.test(line)) return { kind: "error", text, corrupt: true };
  if (ERROR.test(line)) return { kind: "error", text, corrupt: false };
  return { kind: "other", text };
}

/** Splits a byte stream into lines (ffmpeg ends progress lines with \r, others with \n). */
export class LineSplitter {
  #rest = "";
  readonly #onLine: (line: string) => void;

  constructor(onLine: (line: string) => void) {
    this.#onLine = onLine;
  }

  push(chunk: Buffer | string): void {
    const text = this.#rest + chunk.toString();
    const parts = text.split(/\r\n|\r|\n/);
    this.#rest = parts.pop() ?? "";
    // A runaway line without a newline must not grow without bound.
    if (this.#rest.length > 64 * 1024) this.#rest = this.#rest.slice(-4096);
    for (const p of parts) this.#onLine(p);
  }

  flush(): void {
    if (this.#rest !== "") this.#onLine(this.#rest);
    this.#rest = "";
  }
}
