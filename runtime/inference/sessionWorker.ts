/**
 * The worker-thread side of {@link WorkerSession}: owns one onnxruntime session, so inference
 * never blocks the daemon's event loop. Inputs arrive in shared memory and are copied into
 * tensors allocated once per shape (onnxruntime-node refuses SharedArrayBuffer-backed tensors);
 * outputs go back as transferred buffers.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";

interface Init {
  file: string;
  options: ort.InferenceSession.SessionOptions;
}

export interface WireTensor {
  type: ort.Tensor.Type;
  dims: readonly number[];
  data: Float32Array;
}

export type WorkerRequest = { kind: "run"; id: number; feeds: Record<string, WireTensor> } | { kind: "release" };

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
  port.postMessage({ kind: "ready", inputNames: session.inputNames, outputNames: session.outputNames, inputMetadata: session.inputMetadata, outputMetadata: session.outputMetadata });
  port.on("message", (req: WorkerRequest) => {
    if (req.kind === "release") {
      session.release().then(
        () => port.postMessage({ kind: "released" }),
        (err: unknown) => port.postMessage({ kind: "released", error: String(err) }),
      );
      return;
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(req.feeds)) feeds[name] = new ort.Tensor(t.type, localCopy(name, t.data), t.dims);
    session.run(feeds).then(
      (out) => {
        const outputs: Record<string, WireTensor> = {};
        const transfer = new Set<ArrayBuffer>();
        for (const [name, t] of Object.entries(out)) {
          const data = t.data as Float32Array;
          outputs[name] = { type: t.type, dims: t.dims, data };
          transfer.add(data.buffer as ArrayBuffer);
        }
        port.postMessage({ kind: "result", id: req.id, outputs }, [...transfer]);
      },
      (err: unknown) => port.postMessage({ kind: "result", id: req.id, error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

void main();
