import type { ModelSession } from "./session.js";
import type { TensorBuffer } from "./tensorBuffer.js";

/**
 * Runs the model `runs` times on the buffer's current content (letterbox grey is fine), so that
 * the first real frame does not pay for lazy allocations and kernel selection. Returns the
 * duration of the last run in ms.
 */
export async function warmUp(model: ModelSession, inputName: string, buffer: TensorBuffer, runs: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await model.run({ [inputName]: buffer.tensor(1) });
    last = performance.now() - t0;
  }
  return last;
}
