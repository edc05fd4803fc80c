import type { CameraConfig } from "../../runtime/config/sections/cameras.js";
import { redactUrl, type Logger } from "../../runtime/log/logger.js";
import type { Metrics } from "../../runtime/metrics.js";
import type { Part, PartHealth, PartState } from "../../runtime/part.js";
import { RateMeter } from "./rateMeter.js";
import { cameraMetrics, type CameraMetrics } from "./cameraMetrics.js";
import { ffmpegCaps, resolveFfmpeg, type FfmpegBinary, type FfmpegCaps } from "./ffmpegBinary.js";
import type { StderrLine } from "./ffmpegLog.js";
import { FfmpegRunner, type FfmpegEnd, type FfmpegRun, type RetryDecision } from "./ffmpegRunner.js";
import { LatestFrameSlot, type Frame } from "./frame.js";
import { FifoReader } from "./fifoReader.js";
import { FrameCutter } from "./frameCutter.js";
import { FramePool } from "./framePool.js";
import { FrameInfos } from "./frameInfos.js";
import { letterboxFilter, letterboxGeometry, stillsFilterGraph, type FrameSpec } from "./letterbox.js";
import { PortKnocker } from "../../runtime/supervise/portKnock.js";
import { cameraInput } from "./hiddenInput.js";
import type { CameraSource } from "./source.js";
import { JpegSplitter, type Still } from "./stills.js";
import { stopFfmpeg } from "./stopFfmpeg.js";

export type CameraState = "starting" | "streaming" | "reconnecting" | "failed" | "stopped";

/** A camera in health: its stream, rates and counts, the last ffmpeg error, and the next reconnect while it waits. */
export type CameraHealth = PartHealth & {
  stream: CameraState;
  source: CameraSource["kind"];
  /** The url without credentials. */
  url: string;
  /** Frames per second from ffmpeg, and taken by detection. */
  fps_in: number;
  fps_out: number;
  frames_in: number;
  frames_out: number;
  /** Frames replaced before detection took them. */
  dropped: number;
  /** Damaged stream data the decoder reported. */
  corrupt: number;
  /** ffmpeg restarts. */
  restarts: number;
  /** When ffmpeg is started again (ISO 8601), while the camera waits to reconnect. */
  retry_at?: string;
  /** The stream's picture size, once known, e.g. "1280x720". */
  src_size?: string;
  last_error?: string;
  /**
   * A file read only as fast as detection takes its frames (`read_as_consumed`) whose frame has
   * waited past `stall_timeout_ms` for it: how long (its detector is down or stuck).
   */
  waiting_for_consumer_ms?: number;
};

export interface CameraOptions extends FrameSpec {
  log: Logger;
  /** Builds the source (the factory picks the kind from the url). */
  source: CameraSource;
  /** The config's ffmpeg_path, if any. */
  ffmpegPath?: string;
  metrics?: Metrics;
  /** ffmpeg stop steps (ms); tests shorten them. */
  stop?: { quitMs?: number; termMs?: number };
  /** Every this many frames ffmpeg also writes a JPEG at the camera's own resolution; 0 or absent: none. */
  stillEvery?: number;
  /** Where a run's input file goes when its url has credentials (`<data_dir>/run`); default: the system's temp folder. */
  runDir?: string;
}

/** Stills kept: the newest, and the one before it (whose frame detection has surely handled). */
const STILLS_KEPT = 2;

/** What the camera keeps per ffmpeg run: its frame cutter and what showinfo said about its frames. */
interface RunState {
  /** Where ffmpeg's frames arrive: a FIFO read into one reused buffer, else the child's stdout. */
  fifo?: FifoReader;
  cutter: FrameCutter;
  infos: FrameInfos;
  frames: number;
  /** The camera frame index of this run's first frame: still k of the run pictures frame baseIndex + k × stillEvery. */
  baseIndex: number;
  /** Where ffmpeg writes the run's stills, when it does. */
  stillFifo?: FifoReader;
  stills: number;
  lastFrameAt?: number;
  /** Reading paused because the slot is full (file sources not paced in real time). */
  paused?: boolean;
  stalled: boolean;
  /** A frame whose showinfo line has not been read yet. */
  pending?: { n: number; data: Buffer; arrival: number; timer: NodeJS.Timeout };
}

type Run = FfmpegRun<RunState>;

/** The stream ffmpeg's frames arrive on: the run's FIFO, else its stdout. */
function frameStream(run: Run): NodeJS.ReadableStream | null {
  return run.state.fifo?.socket ?? run.child.stdout;
}

const STATE_OF: Record<CameraState, PartState> = {
  starting: "starting",
  streaming: "running",
  reconnecting: "degraded",
  failed: "failed",
  stopped: "stopped",
};
/** ffmpeg messages that mean the config or the build is wrong, not that the camera is away. */
const PERMANENT =
  /Unknown decoder|Unrecognized option|No such filter|Unknown input format|Option \S+ not found|Device or resource busy|Permission denied|not an executable|ENOENT|EACCES/i;

const FIRST_FRAME_GRACE_MS = 10_000;
/** How long a frame waits for its showinfo line before it goes out without a timestamp. */
const INFO_WAIT_MS = 250;

/**
 * A camera: one ffmpeg child (run by the {@link FfmpegRunner}) that decodes, rate-limits, scales
 * and letterboxes the stream to raw frames, and a latest-frame slot that always holds the newest
 * one. It reconnects with backoff, restarts a stalled stream, and reports its state and its next
 * retry in health; it never throws after start().
 */
export class Camera implements Part {
  readonly name: string;
  readonly kind = "camera";
  readonly id: string;
  /** The newest frame; consumers take() from here. */
  readonly slot = new LatestFrameSlot();
  readonly #cfg: CameraConfig;
  readonly #opts: CameraOptions;
  readonly #log: Logger;
  readonly #frameBytes: number;
  readonly #pool: FramePool;
  #runner: FfmpegRunner<RunState> | undefined;
  #bin: FfmpegBinary | undefined;
  #metrics: CameraMetrics | undefined;
  #labels: { camera: string } = { camera: "" };
  #caps: FfmpegCaps | undefined;
  #state: CameraState = "stopped";
  #stopping = false;
  #knocker: PortKnocker | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #frameIndex = 0;
  #corrupt = 0;
  /** ffmpeg runs after the first, over the camera's life (a stop and start is one more). */
  #restarts = 0;
  #lastError: string | undefined;
  /** How the last run ended, for the retry's log line. */
  #lastEnd: { code: number | null; signal: NodeJS.Signals | null; frames: number } | undefined;
  #streamingSince: number | undefined;
  #src: { width: number; height: number } | undefined;
  #stills: Still[] = [];
  readonly #inRate = new RateMeter();
  /** When the newest frame started waiting for a consumer (backpressure), and whether that was logged. */
  #waitingSince: number | undefined;
  #waitingReported = false;
  readonly #outRate = new RateMeter();

  constructor(cfg: CameraConfig, opts: CameraOptions) {
    this.#cfg = cfg;
    this.#opts = opts;
    this.id = cfg.id;
    this.name = `camera:${cfg.id}`;
    this.#log = opts.log;
    this.#frameBytes = opts.width * opts.height * 3;
    this.#pool = new FramePool(this.#frameBytes);
    this.slot.setRecycler((data) => this.#pool.recycle(data));
  }

  get state(): CameraState {
    return this.#state;
  }

  /**
   * The newest stills at the camera's own resolution, oldest first (empty when stills are off or
   * none came yet): JPEGs of frames detection also gets, so boxes found on a frame fit its still.
   */
  get stills(): readonly Still[] {
    return this.#stills;
  }

  /** The running ffmpeg's pid, if one runs. */
  get pid(): number | undefined {
    return this.#runner?.current?.child.pid;
  }

  async start(): Promise<void> {
    this.#stopping = false;
    this.#state = "starting";
    this.#metrics = this.#opts.metrics ? cameraMetrics(this.#opts.metrics) : undefined;
    this.#labels = { camera: this.id };
    try {
      this.#bin = resolveFfmpeg(this.#opts.ffmpegPath);
      this.#caps = await ffmpegCaps(this.#bin.path);
    } catch (err) {
      this.#state = "failed";
      this.#lastError = (err as Error).message;
      throw new Error(`camera "${this.id}": ${this.#lastError}`);
    }
    // stop() may have come while ffmpeg was being asked for its version.
    if (this.#stopping) return;
    this.#log.info(
      { ffmpeg: this.#bin.path, from: this.#bin.origin, version: this.#caps.version, source: this.#opts.source.kind, url: redactUrl(this.#cfg.url) },
      "camera starting",
    );
    if (this.backpressure) this.slot.setTakenListener(() => this.#resume());
    clearInterval(this.#watchdog);
    const tick = Math.min(250, Math.floor(this.#cfg.stall_timeout_ms / 4));
    this.#watchdog = setInterval(() => this.#tick(), tick);
    // The runner (and its backoff) lives as long as the part: a restart of the part is one more ffmpeg restart.
    this.#runner ??= new FfmpegRunner<RunState>({
      bin: this.#bin.path,
      log: this.#log,
      backoff: { initial_ms: this.#cfg.backoff.initial_ms, max_ms: this.#cfg.backoff.max_ms },
      ...(this.#opts.stop ? { stop: this.#opts.stop } : {}),
      prepare: (restart) => this.#prepare(restart),
      onStdout: (run, chunk) => run.state.cutter.push(chunk),
      onStderr: (run, line) => this.#onStderr(run, line),
      onExit: (run) => {
        // A paused pipe never ends, and "close" waits for it: drain it once ffmpeg has exited.
        run.state.paused = false;
        frameStream(run)?.resume();
        run.state.fifo?.writerOpened();
        run.state.stillFifo?.writerOpened();
      },
      onClose: (run) => this.#flushPending(run),
      onEnd: (run, end) => this.#onEnd(run, end),
      onRetry: (delay) => this.#onRetry(delay),
    });
    await this.#runner.start();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    this.#knocker?.stop();
    this.#knocker = undefined;
    const how = await this.#runner?.stop();
    if (how) this.#log.debug({ how }, "ffmpeg stopped");
    this.#state = "stopped";
  }

  health(): CameraHealth {
    const retryAt = this.#runner?.retryAt;
    const streaming = this.#state === "streaming";
    const waiting = this.#consumerWaitMs();
    return {
      state: waiting !== undefined ? "degraded" : STATE_OF[this.#state],
      ...(this.#lastError !== undefined && !streaming ? { error: this.#lastError } : {}),
      ...(waiting !== undefined ? { error: this.#waitingMessage(waiting), waiting_for_consumer_ms: waiting } : {}),
      stream: this.#state,
      source: this.#opts.source.kind,
      url: redactUrl(this.#cfg.url),
      fps_in: round1(this.#inRate.rate()),
      fps_out: round1(this.#outRate.rate()),
      frames_in: this.#frameIndex,
      frames_out: this.slot.taken,
      dropped: this.slot.dropped,
      corrupt: this.#corrupt,
      restarts: this.#restarts,
      ...(retryAt !== undefined && !this.#stopping ? { retry_at: new Date(retryAt).toISOString() } : {}),
      ...(this.#src ? { src_size: `${this.#src.width}x${this.#src.height}` } : {}),
      ...(this.#lastError !== undefined ? { last_error: this.#lastError } : {}),
    };
  }

  #args(inputArgs: string[], output = "pipe:1", stills?: string): string[] {
    const cfg = this.#cfg;
    const input = [
      "-hide_banner",
      "-nostats",
      "-loglevel",
      "info",
      ...(cfg.hwaccel ? ["-hwaccel", cfg.hwaccel] : []),
      ...(cfg.decoder ? ["-c:v", cfg.decoder] : []),
      ...inputArgs,
    ];
    const frames = ["-vsync", "passthrough", "-f", "rawvideo", "-pix_fmt", this.#opts.pixelFormat, ...(output === "pipe:1" ? [] : ["-y"]), output];
    if (stills === undefined) return [...input, "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", letterboxFilter(this.#opts, cfg.fps), ...frames];
    // One decode, two outputs: the model-size frames, and every stillEvery-th of the same frames as a JPEG.
    return [
      ...input,
      "-filter_complex",
      stillsFilterGraph(this.#opts, cfg.fps, this.#opts.stillEvery!),
      "-map",
      "[frames]",
      ...frames,
      "-map",
      "[stills]",
      "-vsync",
      "passthrough",
      "-c:v",
      "mjpeg",
      "-q:v",
      "5",
      "-pix_fmt",
      "yuvj420p",
      // One encoder thread: with frame threads a still comes out only after the next ones are
      // taken, one still interval late.
      "-threads",
      "1",
      "-f",
      "image2pipe",
      "-y",
      stills,
    ];
  }

  /** A new run's frame cutter and FIFO; ffmpeg writes to the FIFO when one could be made, else to stdout. */
  #prepare(restart: boolean): { args: string[]; state: RunState; output?: NodeJS.EventEmitter; release?: () => void } {
    this.#knocker?.stop();
    this.#knocker = undefined;
    if (restart) {
      this.#restarts++;
      this.#metrics?.restarts.inc(this.#labels);
    }
    // `state` is complete before any frame can arrive (ffmpeg has not been spawned yet).
    const state: RunState = {
      cutter: new FrameCutter(
        this.#frameBytes,
        (d) => this.#onFrame(state, d),
        () => this.#pool.acquire(),
      ),
      infos: new FrameInfos(),
      frames: 0,
      baseIndex: this.#frameIndex,
      stills: 0,
      stalled: false,
    };
    const input = cameraInput(this.#opts.source, this.#caps!, this.#opts.runDir);
    const fifo = FifoReader.create((chunk) => state.cutter.push(chunk));
    if (!fifo) return { args: this.#args(input.args), state, release: input.release };
    state.fifo = fifo;
    // Stills go through a FIFO of their own (where FIFOs cannot be made, there are none).
    const splitter = (this.#opts.stillEvery ?? 0) > 0 ? new JpegSplitter((jpeg) => this.#onStill(state, jpeg)) : undefined;
    const stillFifo = splitter ? FifoReader.create((chunk) => splitter.push(chunk)) : undefined;
    if (stillFifo) state.stillFifo = stillFifo;
    return {
      args: this.#args(input.args, fifo.path, stillFifo?.path),
      state,
      output: fifo.socket,
      release: () => {
        input.release();
        fifo.close();
        stillFifo?.close();
      },
    };
  }

  #onStderr(run: Run, parsed: StderrLine): void {
    switch (parsed.kind) {
      case "frame": {
        const frame = run.state.infos.add(parsed.info);
        if (run.state.pending?.n === frame) this.#flushPending(run);
        return;
      }
      case "error":
        if (parsed.corrupt) {
          this.#corrupt++;
          this.#metrics?.corrupt.inc(this.#labels);
        }
        this.#log.debug({ ffmpeg: parsed.text }, "ffmpeg");
        return;
      case "other":
        this.#log.debug({ ffmpeg: parsed.text }, "ffmpeg");
        return;
      case "skip":
        return;
    }
  }

  /** The run whose state this is, while it is the current one. */
  #currentRun(state: RunState): Run | undefined {
    const run = this.#runner?.current;
    return run?.state === state ? run : undefined;
  }

  /**
   * A frame's bytes are complete. Its showinfo line (timestamp, source size) is written to
   * stderr before the frame to stdout, but the two pipes are read independently: when the line
   * has not been read yet, the frame waits for it (at most INFO_WAIT_MS, and never behind a
   * newer frame).
   */
  #onFrame(state: RunState, data: Buffer): void {
    const run = this.#currentRun(state);
    if (!run) return;
    const now = Date.now();
    state.lastFrameAt = now;
    const n = state.frames++;
    if (state.pending) this.#flushPending(run);
    if (state.infos.has(n)) {
      this.#emit(run, n, data, now);
      return;
    }
    state.pending = { n, data, arrival: now, timer: setTimeout(() => this.#flushPending(run), INFO_WAIT_MS) };
  }

  #onStill(state: RunState, jpeg: Buffer): void {
    if (!this.#currentRun(state) || this.#stopping) return;
    const src = this.#src ?? { width: this.#opts.width, height: this.#opts.height };
    const frameIndex = state.baseIndex + state.stills++ * this.#opts.stillEvery!;
    this.#stills = [...this.#stills, { jpeg, frameIndex, width: src.width, height: src.height, at_ms: Date.now() }].slice(-STILLS_KEPT);
  }

  #flushPending(run: Run): void {
    const p = run.state.pending;
    if (!p) return;
    clearTimeout(p.timer);
    run.state.pending = undefined;
    if (run === this.#runner?.current && !this.#stopping) this.#emit(run, p.n, p.data, p.arrival);
  }

  #emit(run: Run, n: number, data: Buffer, now: number): void {
    const own = run.state.infos.take(n);
    const info = own ?? run.state.infos.last;
    const srcW = info?.src_width ?? this.#opts.width;
    const srcH = info?.src_height ?? this.#opts.height;
    if (!this.#src || this.#src.width !== srcW || this.#src.height !== srcH) {
      if (this.#src) this.#log.info({ from: `${this.#src.width}x${this.#src.height}`, to: `${srcW}x${srcH}` }, "camera resolution changed");
      this.#src = { width: srcW, height: srcH };
    }
    const { scaled_width: _w, scaled_height: _h, ...letterbox } = letterboxGeometry(srcW, srcH, this.#opts);
    const frame: Frame = {
      camera_id: this.id,
      index: this.#frameIndex++,
      width: this.#opts.width,
      height: this.#opts.height,
      format: this.#opts.pixelFormat,
      data,
      arrival_ms: now,
      letterbox,
    };
    if (own?.pts_ms !== undefined) frame.pts_ms = own.pts_ms;
    if (this.slot.peek() !== undefined) this.#metrics?.dropped.inc(this.#labels);
    this.slot.put(frame);
    this.#metrics?.frames.inc(this.#labels);
    const live = run.child;
    if (this.backpressure && !run.state.paused && live.exitCode === null && live.signalCode === null) {
      // A file read as fast as possible: rather than decode frames only to drop them, stop
      // reading until this one is taken; ffmpeg then blocks on the full pipe and costs nothing.
      run.state.paused = true;
      this.#waitingSince = now;
      frameStream(run)?.pause();
    }
    if (this.#state !== "streaming") {
      this.#state = "streaming";
      this.#streamingSince = now;
      this.#log.info({ src: `${srcW}x${srcH}`, size: `${frame.width}x${frame.height}`, restarts: this.#restarts }, "camera streaming");
    }
  }

  #onEnd(run: Run | undefined, end: FfmpegEnd): RetryDecision {
    const { code, signal, error } = end;
    const now = Date.now();
    const streamedFor = this.#state === "streaming" && this.#streamingSince !== undefined ? now - this.#streamingSince : 0;
    this.#streamingSince = undefined;
    this.#inRate.clear();
    if (this.#opts.source.finite && code === 0 && !run?.state.stalled) {
      this.#state = "stopped";
      this.#log.info({ frames: this.#frameIndex }, "camera source ended (file without loop)");
      return { retry: false };
    }
    const exited = `ffmpeg exited (${signal ?? `code ${code}`})`;
    const lastLine = run?.errorLines.at(-1);
    const why =
      error ??
      (run?.state.stalled ? `no frame for ${this.#cfg.stall_timeout_ms} ms; ffmpeg restarted` : lastLine ? `${exited}: ${lastLine}` : exited);
    this.#lastError = why;
    this.#state = PERMANENT.test(why) ? "failed" : "reconnecting";
    this.#lastEnd = { code, signal, frames: run?.state.frames ?? 0 };
    // A stream that stalled after delivering frames gets one immediate retry: waiting out the
    // stall timeout was its delay already.
    return { retry: true, immediate: !!run?.state.stalled && run.state.frames > 0, recovered: streamedFor >= this.#cfg.backoff.reset_after_ms };
  }

  #onRetry(delay: number): void {
    const end = this.#lastEnd;
    this.#log.warn(
      { code: end?.code ?? null, signal: end?.signal ?? null, error: this.#lastError, retry_in_ms: delay, restarts: this.#restarts },
      this.#state === "failed" ? "camera failed; retrying" : "camera lost; reconnecting",
    );
    const endpoint = this.#opts.source.endpoint;
    if (endpoint && delay > 500) this.#watchEndpoint(endpoint, (end?.frames ?? 0) > 0);
  }

  /**
   * While waiting to reconnect, knock on the camera's port: when it goes from refusing to
   * accepting connections, the camera is back and waiting out the backoff would only lose frames.
   * After a stream that was delivering frames is lost, the port answering at all is enough (the
   * camera may have rebooted between two knocks); that shortcut cannot loop, because it needs
   * the run before it to have streamed.
   */
  #watchEndpoint(endpoint: { host: string; port: number }, wasStreaming: boolean): void {
    this.#knocker?.stop();
    this.#knocker = new PortKnocker({
      ...endpoint,
      wasWorking: wasStreaming,
      waiting: () => !this.#stopping && this.#runner?.current === undefined,
      onBack: () => {
        this.#log.info({ endpoint: `${endpoint.host}:${endpoint.port}` }, "camera accepts connections again; reconnecting now");
        this.#runner?.retryNow();
      },
    });
    this.#knocker.start();
  }

  #tick(): void {
    const now = Date.now();
    this.#inRate.sample(now, this.#frameIndex);
    this.#outRate.sample(now, this.slot.taken);
    this.#metrics?.fps.set(round1(this.#inRate.rate()), this.#labels);
    const run = this.#runner?.current;
    const waiting = this.#consumerWaitMs(now);
    if (waiting !== undefined && !this.#waitingReported) {
      // Not a stall of the camera (ffmpeg waits on purpose), but nothing may wait unseen.
      this.#waitingReported = true;
      this.#log.warn({ waiting_ms: waiting, frames_in: this.#frameIndex }, this.#waitingMessage(waiting));
    }
    if (!run || run.state.stalled || run.state.paused || this.#stopping) return;
    // The first frame of a run also waits for ffmpeg to connect and probe the stream (up to
    // about 5 s of it), so it gets FIRST_FRAME_GRACE_MS on top of the stall timeout.
    const limit = run.state.lastFrameAt === undefined ? this.#cfg.stall_timeout_ms + FIRST_FRAME_GRACE_MS : this.#cfg.stall_timeout_ms;
    if (now - (run.state.lastFrameAt ?? run.startedAt) <= limit) return;
    run.state.stalled = true;
    this.#log.warn(
      { stall_timeout_ms: this.#cfg.stall_timeout_ms, frames_this_run: run.state.frames },
      run.state.frames > 0 ? "camera stalled; restarting ffmpeg" : "camera gave no frame; restarting ffmpeg",
    );
    // A stalled ffmpeg is usually blocked in a read and cannot see `q`: short steps, so the
    // restart lands within about a second of the stall being noticed.
    void stopFfmpeg(run.child, { quitMs: 250, termMs: 1000 }).then((how) => this.#log.debug({ how }, "stalled ffmpeg stopped"));
  }

  /**
   * A source with backpressure (a file read as fast as detection goes) is read only as fast as
   * frames are taken; live sources never wait, their older frames are dropped instead.
   */
  get backpressure(): boolean {
    return this.#opts.source.readsAsConsumed;
  }

  /** How long a frame has waited for a consumer, once that is past the stall timeout. */
  #consumerWaitMs(now = Date.now()): number | undefined {
    const run = this.#runner?.current;
    if (!run?.state.paused || this.#waitingSince === undefined || this.#stopping) return undefined;
    const ms = now - this.#waitingSince;
    return ms > this.#cfg.stall_timeout_ms ? ms : undefined;
  }

  #waitingMessage(ms: number): string {
    return `no frame taken for ${Math.round(ms / 1000)} s: this file is read only as detection consumes it (read_as_consumed), and its detector takes none (see the detector's health)`;
  }

  #resume(): void {
    const run = this.#runner?.current;
    if (!run?.state.paused) return;
    if (this.#waitingReported) this.#log.info({ waited_ms: Date.now() - (this.#waitingSince ?? Date.now()) }, "detection takes frames again");
    this.#waitingSince = undefined;
    this.#waitingReported = false;
    run.state.paused = false;
    // Time spent waiting for the consumer is not a stall.
    run.state.lastFrameAt = Date.now();
    frameStream(run)?.resume();
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
