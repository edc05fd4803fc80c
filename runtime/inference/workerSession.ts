import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import type { SharedOutput, WireTensor, WorkerRequest } from "./sessionWorker.js";
import type { InputSpec, PixelSource } from "./tensorBuffer.js";

type Metadata = ort.InferenceSession["inputMetadata"];
type Reply =
  | { kind: "ready"; inputNames: string[]; outputNames: string[]; inputMetadata: Metadata; outputMetadata: Metadata }
  | { kind: "error"; message: string }
  | { kind: "result"; id: number; outputs?: Record<string, WireTensor | SharedOutput>; error?: string }
  | { kind: "released"; error?: string };

const HERE = fileURLToPath(import.meta.url);
const EXT = path.extname(HERE);

/**
 * The worker's entry. Built, it is sessionWorker.js; from source (tsx, tests) it is the .ts file,
 * which a worker can load only after registering tsx's loader in that thread.
 */
function workerEntry(): URL {
  const entry = new URL(`./sessionWorker${EXT}`, import.meta.url);
  if (EXT !== ".ts") return entry;
  // require.resolve finds the CommonJS build; the worker imports its ESM twin next to it.
  const tsxApi = pathToFileURL(
    createRequire(import.meta.url)
      .resolve("tsx/esm/api")
      .replace(/\.cjs$/, ".mjs"),
  ).href;
  const boot = `import { register } from ${JSON.stringify(tsxApi)}; register(); await import(${JSON.stringify(entry.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

/**
 * An onnxruntime session living in a worker thread, with the parts of `InferenceSession` that
 * {@link ModelSession} uses. onnxruntime-node runs inference synchronously on the calling
 * thread; here the daemon's event loop stays free while the model runs, so frames keep being
 * read, the outbox commits and MQTT flows in parallel instead of in between runs.
 */
export class WorkerSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: Metadata;
  readonly outputMetadata: Metadata;
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (r: ort.InferenceSession.ReturnType) => void; reject: (e: Error) => void }>();
  readonly #shared = new Map<string, Float32Array>();
  /** Per batch slot, shared memory for frames whose pixels are not shared already. */
  readonly #pixels: Uint8Array[] = [];
  /** Per output name, the shared buffer the worker writes that output into (made after the first run). */
  readonly #outputs = new Map<string, Float32Array>();
  #nextId = 1;
  #dead: Error | undefined;

  private constructor(worker: Worker, ready: Extract<Reply, { kind: "ready" }>) {
    this.#worker = worker;
    this.inputNames = ready.inputNames;
    this.outputNames = ready.outputNames;
    this.inputMetadata = ready.inputMetadata;
    this.outputMetadata = ready.outputMetadata;
    worker.on("message", (m: Reply) => {
      if (m.kind !== "result") return;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.error !== undefined || !m.outputs) {
        p.reject(new Error(m.error ?? "inference worker returned no outputs"));
        return;
      }
      const out: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(m.outputs)) {
        if ("shared" in t) {
          const buf = this.#outputs.get(name)!;
          out[name] = new ort.Tensor(t.type, buf.length === t.length ? buf : buf.subarray(0, t.length), t.dims);
          continue;
        }
        out[name] = new ort.Tensor(t.type, t.data, t.dims);
        // Next time this output is written into memory shared with the worker: no allocation here.
        if (t.type === "float32" && (this.#outputs.get(name)?.length ?? 0) < t.data.length)
          this.#outputs.set(name, new Float32Array(new SharedArrayBuffer(t.data.byteLength)));
      }
      p.resolve(out);
    });
    const fail = (err: Error) => {
      this.#dead ??= err;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    worker.on("error", (err) => fail(new Error(`inference worker failed: ${err.message}`)));
    worker.on("exit", (code) => fail(new Error(`inference worker exited (${code})`)));
  }

  /** Starts a worker and creates the session in it; rejects with onnxruntime's message when that fails. */
  static async create(file: string, options: ort.InferenceSession.SessionOptions): Promise<WorkerSession> {
    const worker = new Worker(workerEntry(), { workerData: { file, options } });
    let onMessage: ((m: Reply) => void) | undefined;
    let onError: ((err: Error) => void) | undefined;
    let onExit: ((code: number) => void) | undefined;
    try {
      const ready = await new Promise<Extract<Reply, { kind: "ready" }>>((resolve, reject) => {
        onMessage = (m: Reply) => {
          if (m.kind === "ready") resolve(m);
          else if (m.kind === "error") reject(new Error(m.message));
        };
        onError = reject;
        onExit = (code: number) => reject(new Error(`inference worker exited (${code}) before the session was created`));
        worker.on("message", onMessage).once("error", onError).once("exit", onExit);
      });
      return new WorkerSession(worker, ready);
    } catch (err) {
      await worker.terminate();
      throw err;
    } finally {
      // Only our own listeners: Worker keeps internal ones that deliver messages.
      if (onMessage) worker.off("message", onMessage);
      if (onError) worker.off("error", onError);
      if (onExit) worker.off("exit", onExit);
    }
  }
  /**
   * Runs the model. Outputs of a run started while no other was pending come back in memory
   * shared with the worker and allocated once: they hold until the next run() of this session,
   * so read (or copy) them before starting another.
   * Float32 inputs are handed over in shared memory: as they are when they already
   * live in a SharedArrayBuffer (the caller must not change them until the run settles), else
   * copied into one allocated once per input.
   */
  async run(feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
    if (this.#dead) throw this.#dead;
    const wire: Record<string, WireTensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      if (t.type !== "float32") throw new Error(`input "${name}": only float32 inputs cross to the inference worker, got ${t.type}`);
      const src = t.data as Float32Array;
      if (src.buffer instanceof SharedArrayBuffer) {
        // Already shared (a TensorBuffer made with `shared`): the worker reads it as it is.
        wire[name] = { type: t.type, dims: t.dims, data: src };
        continue;
      }
      // The buffer kept per input serves one run at a time; a run started while another is
      // pending gets its own, or it would overwrite the input that run has not read yet.
      let shared = this.#pending.size === 0 ? this.#shared.get(name) : undefined;
      if (!shared || shared.length < src.length) {
        shared = new Float32Array(new SharedArrayBuffer(src.byteLength));
        if (this.#pending.size === 0) this.#shared.set(name, shared);
      }
      const view = shared.length === src.length ? shared : shared.subarray(0, src.length);
      view.set(src);
      wire[name] = { type: t.type, dims: t.dims, data: view };
    }
    return this.#send((id, outputs) => ({ kind: "run", id, feeds: wire, ...(outputs ? { outputs } : {}) }));
  }

  /**
   * Runs the model on camera frames: the worker converts them into its own input tensor
   * (`spec`, up to `maxBatch` frames), so the caller neither converts nor copies floats. Pixels
   * in shared memory (a FramePool's) are read where they are, and must not change until the run
   * settles; others are copied once into shared memory. Outputs as with {@link run}.
   */
  async runFrames(input: string, spec: InputSpec, maxBatch: number, frames: readonly PixelSource[]): Promise<ort.InferenceSession.ReturnType> {
    if (this.#dead) throw this.#dead;
    if (frames.length < 1 || frames.length > maxBatch) throw new Error(`batch of ${frames.length} is outside 1..${maxBatch}`);
    const wire = frames.map((f, slot): PixelSource => {
      if (f.data.buffer instanceof SharedArrayBuffer) return { width: f.width, height: f.height, format: f.format, data: f.data };
      let shared = this.#pending.size === 0 ? this.#pixels[slot] : undefined;
      if (!shared || shared.length !== f.data.length) {
        shared = new Uint8Array(new SharedArrayBuffer(f.data.length));
        if (this.#pending.size === 0) this.#pixels[slot] = shared;
      }
      shared.set(f.data);
      return { width: f.width, height: f.height, format: f.format, data: shared };
    });
    return this.#send((id, outputs) => ({ kind: "frames", id, input, spec, maxBatch, frames: wire, ...(outputs ? { outputs } : {}) }));
  }

  #send(request: (id: number, outputs: Record<string, Float32Array> | undefined) => WorkerRequest): Promise<ort.InferenceSession.ReturnType> {
    const id = this.#nextId++;
    // Outputs go to the shared buffers only when no other run is pending, so a result is never
    // overwritten before the run that made it settles.
    const outputs = this.#pending.size === 0 && this.#outputs.size > 0 ? Object.fromEntries(this.#outputs) : undefined;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage(request(id, outputs));
    });
  }

  /** Ends the thread now, even in the middle of a run (a stuck model): the pending run rejects. */
  async terminate(): Promise<void> {
    const err = new Error("inference worker terminated");
    this.#dead ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    await this.#worker.terminate();
  }

  async release(): Promise<void> {
    if (!this.#dead) {
      const done = new Promise<void>((resolve) => {
        const onMessage = (m: Reply) => {
          if (m.kind !== "released") return;
          this.#worker.off("message", onMessage);
          resolve();
        };
        this.#worker.on("message", onMessage);
        this.#worker.once("exit", () => resolve());
      });
      const req: WorkerRequest = { kind: "release" };
      this.#worker.postMessage(req);
      await done;
    }
    this.#dead ??= new Error("session released");
    await this.#worker.terminate();
  }
}

/** A `create` for {@link SessionOptions} that puts each session in its own worker thread. */
export async function createInWorker(file: string, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return (await WorkerSession.create(file, options)) as unknown as ort.InferenceSession;
}
