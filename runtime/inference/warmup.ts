import type { ModelSession } from "./session.js";
import type { TensorBuffer } from "./tensorBuffer.js";

/** What a warm-up did: how long opening took, and the first and last run at each batch size. */
export interface WarmupReport {
  /** Milliseconds creating the session took (TensorRT builds or loads its engine there). */
  openMs: number;
  /** TensorRT only: "cached" when the keyed engine folder already held an engine, else "built". */
  engine: "cached" | "built" | null;
  batches: { batch: number; firstMs: number; lastMs: number }[];
  /** Opening plus every warm-up run. */
  totalMs: number;
}

/**
 * Runs the model `runs` times at every batch size from 1 to `maxBatch` on the buffer's current
 * content (letterbox grey is fine), so that no batch size the detector will use pays for lazy
 * allocations, kernel selection or an engine build during real frames.
 */
export async function warmUp(model: ModelSession, inputName: string, buffer: TensorBuffer, runs: number, maxBatch = 1): Promise<WarmupReport> {
  const batches: WarmupReport["batches"] = [];
  let total = model.openMs;
  const top = Math.max(1, Math.min(maxBatch, buffer.maxBatch));
  for (let b = 1; b <= top && runs > 0; b++) {
    let first = 0;
    let last = 0;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await model.run({ [inputName]: buffer.tensor(b) });
      last = performance.now() - t0;
      if (i === 0) first = last;
      total += last;
    }
    batches.push({ batch: b, firstMs: first, lastMs: last });
  }
  const engine = model.setup.engine ? (model.setup.engine.cached ? "cached" : "built") : null;
  return { openMs: model.openMs, engine, batches, totalMs: total };
}
