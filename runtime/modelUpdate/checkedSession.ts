import type { DetectionManifest } from "../inference/manifest.js";
import { createSession, type ModelSession, type SessionOptions } from "../inference/session.js";
import { TensorBuffer } from "../inference/tensorBuffer.js";
import type { ModelVersion } from "./store.js";
import { withVersion } from "./swap.js";

/**
 * Opens a detection model's session on `version` (null: the shipped file) and runs it once on a
 * letterbox-grey input, checking that the manifest's output comes out. A file that loads but
 * cannot run, or runs without that output, fails here, before it replaces anything.
 */
export async function openDetectionSession(manifest: DetectionManifest, version: ModelVersion | null, opts: SessionOptions): Promise<ModelSession> {
  const session = await createSession(withVersion(manifest, version), opts);
  try {
    const buffer = new TensorBuffer(manifest.input, 1);
    buffer.data.fill(manifest.input.letterbox_pad);
    const result = await session.run({ [manifest.input.name]: buffer.tensor(1) });
    if (!result[manifest.output.name]) throw new Error(`no output "${manifest.output.name}" (outputs: ${Object.keys(result).join(", ")})`);
  } catch (err) {
    await session.release();
    throw new Error(
      `model ${manifest.id} (${version ? `update ${version.sha256}` : "shipped file"}) failed its check run: ${(err as Error).message.split("\n")[0]}`,
    );
  }
  return session;
}
