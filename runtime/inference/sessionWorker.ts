/**
 * The worker-thread side of {@link WorkerSession}: owns one onnxruntime session, so inference
 * never blocks the daemon's event loop. Inputs arrive in shared memory, as float tensors that are
 * copied into tensors allocated once per shape (onnxruntime-node refuses SharedArrayBuffer-backed
 * tensors), or as camera frames that are converted here; outputs go back in shared buffers.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { TensorBuffer, type InputSpec, type PixelSource } from "./tensorBuffer.js";

interface Init {
  file: string;
  options: ort.InferenceSession.SessionOptions;
}

export interface WireTensor {
  type: ort.Tensor.Type;
  dims: readonly number[];
  data: Float32Array;
}

/** An output written into the caller's shared buffer instead of being sent: its first `length` values. */
export interface SharedOutput {
  type: ort.Tensor.Type;
  dims: readonly number[];
  length: number;
  shared: true;
}

/**
 * `outputs`: shared buffers the caller keeps per output name; an output that fits is copied into
 * its buffer (no allocation on the caller's side), a larger or non-float32 one is sent as before.
 */
export type WorkerRequest =
  | { kind: "run"; id: number; feeds: Record<string, WireTensor>; outputs?: Record<string, Float32Array> }
  | { kind: "frames"; id: number; input: string; spec: InputSpec; maxBatch: number; frames: PixelSource[]; outputs?: Record<string, Float32Array> }
  | { kind: "release" };

const port = parentPort!;
const init = workerData as Init;
ort.env.logLevel = "fatal";

const locals = new Map<string, Float32Array>();

function localCopy(name: string, src: Float32Array): Float32Array {
  let dst = locals.get(name);
  if (!dst || dst.length !== src.length) {
    dst = new Float32Array(src.length);
    locals.set(name, dst);
  }
  dst.set(src);
  return dst;
}

async function main(): Promise<void> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(init.file, init.options);
  } catch (err) {
    port.postMessage({ kind: "error", message: err instanceof Error ? err.message : String(err) });
    return;
  }
  port.postMessage({
    kind: "ready",
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputMetadata: session.inputMetadata,
    outputMetadata: session.outputMetadata,
  });
  // One request at a time, in arrival order: a run's input copy must not be overwritten by the
  // next request's while onnxruntime has not started it (its run() defers to setImmediate), and a
  // release waits for the runs before it.
  let queue: Promise<void> = Promise.resolve();
  port.on("message", (req: WorkerRequest) => {
    queue = queue.then(() => handle(session, req));
  });
}

/** The tensor that frames are converted into, per input, allocated once (again only when the spec changes). */
const pixelBuffers = new Map<string, { key: string; buffer: TensorBuffer }>();

function pixelBuffer(input: string, spec: InputSpec, maxBatch: number): TensorBuffer {
  const key = JSON.stringify([spec, maxBatch]);
  let b = pixelBuffers.get(input);
  if (!b || b.key !== key) {
    b = { key, buffer: new TensorBuffer(spec, maxBatch) };
    pixelBuffers.set(input, b);
  }
  return b.buffer;
}

function feedsOf(req: Extract<WorkerRequest, { kind: "run" | "frames" }>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  if (req.kind === "frames") {
    // Pixels to tensor here, on the thread that runs the model: the tensor is still in this
    // core's cache when the first layer reads it, and no float copy crosses threads.
    const buffer = pixelBuffer(req.input, req.spec, req.maxBatch);
    req.frames.forEach((f, slot) => buffer.fill(slot, f));
    feeds[req.input] = buffer.tensor(req.frames.length);
    return feeds;
  }
  for (const [name, t] of Object.entries(req.feeds)) feeds[name] = new ort.Tensor(t.type, localCopy(name, t.data), t.dims);
  return feeds;
}

async function handle(session: ort.InferenceSession, req: WorkerRequest): Promise<void> {
  if (req.kind === "release") {
    try {
      await session.release();
      port.postMessage({ kind: "released" });
    } catch (err) {
      port.postMessage({ kind: "released", error: String(err) });
    }
    return;
  }
  let out: ort.InferenceSession.ReturnType;
  try {
    out = await session.run(feedsOf(req));
  } catch (err) {
    port.postMessage({ kind: "result", id: req.id, error: err instanceof Error ? err.message : String(err) });
    return;
  }
  const outputs: Record<string, WireTensor | SharedOutput> = {};
  const transfer = new Set<ArrayBuffer>();
  for (const [name, t] of Object.entries(out)) {
    const data = t.data as Float32Array;
    const target = req.outputs?.[name];
    if (target && t.type === "float32" && data.length <= target.length) {
      target.set(data);
      outputs[name] = { type: t.type, dims: t.dims, length: data.length, shared: true };
      continue;
    }
    outputs[name] = { type: t.type, dims: t.dims, data };
    transfer.add(data.buffer as ArrayBuffer);
  }
  port.postMessage({ kind: "result", id: req.id, outputs }, [...transfer]);
}

void main();
