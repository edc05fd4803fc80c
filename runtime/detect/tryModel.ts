import { DETECTION_SCHEMA } from "../config/sections/detection.js";
import type { ProviderName } from "../inference/session.js";
import type { Logger } from "../log/logger.js";
import { detectImage, type ReportedObject } from "./detectRun.js";

export interface ProviderTrial {
  provider: ProviderName;
  /** Median ms per run of the picture, when the provider works. */
  ms?: number;
  error?: string;
}

export interface Trial {
  still: string;
  /** The objects the first working provider found. */
  objects: ReportedObject[];
  providers: ProviderTrial[];
}

/**
 * Runs a freshly added model on a real still with every provider, one at a time: what it finds
 * and how long a run takes where it runs; a provider that cannot run it says why.
 */
export async function tryModel(
  manifestFile: string,
  still: string,
  log: Logger,
  providers: readonly ProviderName[] = ["tensorrt", "cuda", "cpu"],
): Promise<Trial> {
  const detection = DETECTION_SCHEMA.parse({});
  const trials: ProviderTrial[] = [];
  let objects: ReportedObject[] | undefined;
  for (const provider of providers) {
    try {
      const r = await detectImage(still, {
        model: { id: "trial", manifestFile, providers: [provider], threads: 2, variant: "fp32" },
        detection,
        log,
        runs: 5,
      });
      trials.push({ provider, ms: r.inference_ms });
      objects ??= r.objects;
    } catch (err) {
      trials.push({ provider, error: (err as Error).message.replace(/^model \S+: no execution provider worked \(\w+: /, "").replace(/\)$/, "") });
    }
  }
  return { still, objects: objects ?? [], providers: trials };
}
