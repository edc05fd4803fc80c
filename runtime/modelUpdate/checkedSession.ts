import type { DetectionManifest } from "../detect/detectionManifest.js";
import { decode, roleTensors } from "../detect/decoders/index.js";
import { createSession, type ModelSession, type SessionOptions } from "../inference/session.js";
import { TensorBuffer } from "../inference/tensorBuffer.js";
import type { ModelVersion } from "./store.js";
import { withVersion } from "./swap.js";

/**
 * Opens a detection model's session on `version` (null: the shipped file) and runs it once on a
 * letterbox-grey input, checking that the manifest's outputs come out and decode. A file that loads but
 * cannot run, or runs without those outputs, fails here, before it replaces anything.
 */
export async function openDetectionSession(manifest: DetectionManifest, version: ModelVersion | null, opts: SessionOptions): Promise<ModelSession> {
  const session = await createSession(withVersion(manifest, version), opts);
  try {
    const buffer = new TensorBuffer(manifest.input, 1);
    buffer.data.fill(manifest.input.letterbox_pad);
    const result = await session.run({ [manifest.input.name]: buffer.tensor(1) });
    // The outputs must be there and decode: a file with another layout fails here, not frame by frame.
    decode(manifest.output, roleTensors(manifest.output, result), 0, {
      inputWidth: manifest.input.width,
      inputHeight: manifest.input.height,
      numClasses: manifest.labels.length,
      scoreThreshold: manifest.thresholds.score,
    });
  } catch (err) {
    await session.release();
    throw new Error(
      `model ${manifest.id} (${version ? `update ${version.sha256}` : "shipped file"}) failed its check run: ${(err as Error).message.split("\n")[0]}`,
    );
  }
  return session;
}
