import { execFileSync } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "./sharedData.js";

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number | string | null;
}
export interface PromFamily {
  name: string;
  type: string;
  help: string;
  samples: PromSample[];
}

/**
 * Parses Prometheus text with the official Python client's parser (python3-prometheus-client),
 * so /metrics is checked by the reference implementation, not by our own reading of the format.
 * Throws with the parser's message when the text is not valid.
 */
export function parsePrometheus(text: string): Map<string, PromFamily> {
  const out = execFileSync("/usr/bin/python3", [path.join(REPO_ROOT, "test/fixtures/promParse.py")], { input: text, encoding: "utf8" });
  const families = JSON.parse(out) as PromFamily[];
  return new Map(families.map((f) => [f.name, f]));
}

/** The value of the first sample called `name` (any family) whose labels include `labels`. */
export function sampleValue(families: Map<string, PromFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const f of families.values()) {
    const s = f.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    if (s) return typeof s.value === "number" ? s.value : undefined;
  }
  return undefined;
}
