import { spawn, type ChildProcess } from "node:child_process";
import type { EventEmitter } from "node:events";
import { redactUrl, type Logger } from "../../runtime/log/logger.js";
import { Backoff, type BackoffOptions } from "../../runtime/supervise/backoff.js";
import { LineSplitter, parseStderrLine, type StderrLine } from "./ffmpegLog.js";
import { stopFfmpeg, type StopOptions, type StopOutcome } from "./stopFfmpeg.js";

/** What one run needs, made fresh before each spawn by the runner's owner. */
export interface FfmpegRunSetup<S> {
  args: string[];
  /** The owner's state for this run (a frame cutter, a FIFO, counters …). */
  state: S;
  /** Where the output arrives when it is not stdout (a FIFO's socket): the run is over once it has closed too. */
  output?: EventEmitter;
  /** Releases what the setup made (a FIFO); called once, when the run is over or could not start. */
  release?(): void;
}

/** One ffmpeg process and the owner's state for it. */
export interface FfmpegRun<S> {
  readonly child: ChildProcess;
  readonly startedAt: number;
  readonly state: S;
  /** The last error lines ffmpeg printed in this run, newest last, free of credentials. */
  readonly errorLines: string[];
}

/** How a run ended: ffmpeg's exit, or why it could not run. */
export interface FfmpegEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when ffmpeg could not be started or run at all. */
  error?: string;
}

/** The owner's answer to a run that ended: stay stopped, or run again (at once, or after the backoff). */
export type RetryDecision = { retry: false } | { retry: true; immediate?: boolean; recovered?: boolean };

export interface FfmpegRunnerOptions<S> {
  /** The ffmpeg binary. */
  bin: string;
  log: Logger;
  /** Delays between runs; `recovered` in a decision starts them from `initial_ms` again. */
  backoff: BackoffOptions;
  /** ffmpeg stop steps (ms). */
  stop?: StopOptions;
  /** Makes the next run's arguments and state; `restart` is false for the first run only. */
  prepare(restart: boolean): FfmpegRunSetup<S>;
  onStdout?(run: FfmpegRun<S>, chunk: Buffer): void;
  onStderr?(run: FfmpegRun<S>, line: StderrLine): void;
  /** ffmpeg has exited; its output may not all be read yet. */
  onExit?(run: FfmpegRun<S>): void;
  /** A run is over, its output all read; called for every run, stopping or not, while it is still `current`. */
  onClose?(run: FfmpegRun<S>): void;
  /** A run is over (never called while stopping). `run` is undefined when ffmpeg could not be spawned. */
  onEnd(run: FfmpegRun<S> | undefined, end: FfmpegEnd): RetryDecision;
  /** A retry was scheduled in `delayMs`. */
  onRetry?(delayMs: number): void;
}

const ERROR_LINES_KEPT = 5;
/** A FIFO that does not end this long after ffmpeg's exit (it cannot, but never hang on it). */
const OUTPUT_GRACE_MS = 2000;

interface RunRecord<S> extends FfmpegRun<S> {
  ended: boolean;
  /** Resolves when the run is over. */
  done: Promise<void>;
}

/**
 * The one place an ffmpeg child is spawned, read, restarted and stopped, for the cameras and the
 * live view alike: stderr is split into lines and sorted (errors kept, credentials redacted), a
 * run ends once ffmpeg has closed and all its output was read, the owner decides whether and how
 * soon it runs again (with the backoff, never in a tight loop), and `stop()` goes through
 * stopFfmpeg (`q`, SIGTERM, SIGKILL), so every child is reaped.
 */
export class FfmpegRunner<S> {
  readonly #o: FfmpegRunnerOptions<S>;
  readonly #backoff: Backoff;
  #run: RunRecord<S> | undefined;
  #active = false;
  /** start() was called and stop() not since: a start waiting for a stop to finish still goes ahead. */
  #wanted = false;
  #stopping: Promise<unknown> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryAt: number | undefined;
  #spawns = 0;

  constructor(opts: FfmpegRunnerOptions<S>) {
    this.#o = opts;
    this.#backoff = new Backoff(opts.backoff);
  }

  /** The run in progress, if any. */
  get current(): FfmpegRun<S> | undefined {
    return this.#run;
  }

  /** Runs after the first one (restarts), over the runner's life. */
  get restarts(): number {
    return Math.max(0, this.#spawns - 1);
  }

  /** When the next run is due (ms since the epoch), while one waits for its backoff. */
  get retryAt(): number | undefined {
    return this.#retryAt;
  }

  /** Between start() and stop(). */
  get active(): boolean {
    return this.#active;
  }

  /** Starts the first run (after a stop still in progress has finished). */
  async start(): Promise<void> {
    this.#wanted = true;
    if (this.#stopping) await this.#stopping;
    if (!this.#wanted || this.#active) return;
    this.#active = true;
    this.#spawn();
  }

  /** Cuts a backoff wait short: the next run starts now (the camera answers again). */
  retryNow(): void {
    if (!this.#active || this.#run || this.#retryTimer === undefined) return;
    this.#spawn();
  }

  /** Stops the current run (q, SIGTERM, SIGKILL) and any retry; resolves once it is over. */
  async stop(): Promise<StopOutcome | undefined> {
    this.#wanted = false;
    this.#active = false;
    this.#clearRetry();
    const run = this.#run;
    if (!run) return undefined;
    const stopping = stopFfmpeg(run.child, this.#o.stop).then(async (how) => {
      await run.done;
      return how;
    });
    this.#stopping = stopping;
    try {
      return await stopping;
    } finally {
      if (this.#stopping === stopping) this.#stopping = undefined;
    }
  }

  #clearRetry(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#retryAt = undefined;
  }

  #spawn(): void {
    this.#clearRetry();
    if (!this.#active) return;
    const setup = this.#o.prepare(this.#spawns++ > 0);
    let child: ChildProcess;
    try {
      child = spawn(this.#o.bin, setup.args, { stdio: ["pipe", "pipe", "pipe"] });
    } catch (err) {
      setup.release?.();
      this.#ended(undefined, { code: null, signal: null, error: (err as Error).message });
      return;
    }
    let resolveDone!: () => void;
    const run: RunRecord<S> = {
      child,
      startedAt: Date.now(),
      state: setup.state,
      errorLines: [],
      ended: false,
      done: new Promise<void>((r) => (resolveDone = r)),
    };
    this.#run = run;
    const log = this.#o.log;
    log.debug({ pid: child.pid, args: setup.args.map(redactUrl).join(" ") }, "ffmpeg spawned");
    const lines = new LineSplitter((line) => {
      const parsed = parseStderrLine(line);
      if (parsed.kind === "error") {
        run.errorLines.push(parsed.text);
        if (run.errorLines.length > ERROR_LINES_KEPT) run.errorLines.shift();
      }
      this.#o.onStderr?.(run, parsed);
    });
    if (!setup.output) child.stdout!.on("data", (chunk: Buffer) => this.#o.onStdout?.(run, chunk));
    child.stderr!.on("data", (chunk: Buffer) => lines.push(chunk));
    child.stdin!.on("error", (err) => log.debug({ err: err.message }, "ffmpeg stdin closed"));
    const end = (e: FfmpegEnd): void => {
      if (run.ended) return;
      run.ended = true;
      setup.release?.();
      lines.flush();
      this.#o.onClose?.(run);
      resolveDone();
      if (this.#run === run) this.#run = undefined;
      this.#ended(run, e);
    };
    child.on("error", (err) => end({ code: null, signal: null, error: `cannot run ffmpeg: ${err.message}` }));
    child.on("exit", () => this.#o.onExit?.(run));
    // The run is over once ffmpeg has closed and every byte of output it wrote has been read.
    let outputDone = !setup.output;
    let closed: FfmpegEnd | undefined;
    const finish = (): void => {
      if (closed && outputDone) end(closed);
    };
    setup.output?.once("close", () => {
      outputDone = true;
      finish();
    });
    setup.output?.on("error", (err: Error) => log.debug({ err: err.message }, "ffmpeg output failed"));
    child.on("close", (code: number | null, signal: NodeJS.Signals | null) => {
      closed = { code, signal };
      finish();
      if (!outputDone)
        setTimeout(() => {
          outputDone = true;
          finish();
        }, OUTPUT_GRACE_MS).unref();
    });
  }

  #ended(run: FfmpegRun<S> | undefined, e: FfmpegEnd): void {
    if (!this.#active) return;
    const decision = this.#o.onEnd(run, e);
    if (!decision.retry) {
      this.#active = false;
      return;
    }
    if (decision.recovered) this.#backoff.reset();
    const delay = decision.immediate ? 0 : this.#backoff.next();
    this.#retryAt = Date.now() + delay;
    this.#retryTimer = setTimeout(() => this.#spawn(), delay);
    this.#o.onRetry?.(delay);
  }
}
