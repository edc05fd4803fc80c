import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import pino from "pino";
import { createSession, loadManifest, type ModelManifest, type ModelSession, type VariantName } from "../runtime/inference/index.js";
import { percentile, repoRoot, round } from "./benchProcess.js";
import type { Bench, BenchResult } from "./index.js";

/**
 * `cityedge bench models`: every variant of every shipped model (models/<name>/manifest.json) on
 * the CPU provider, created the way the daemon creates it (createSession: sha256 checked, idle
 * threads not spinning), batch 1, at 1 and 2 intra-op threads. Per thread count it prints each
 * variant's milliseconds per run and the speed-up of each other variant over fp32 (the goal:
 * int8 at least 2x fp32 at the same threads).
 *
 * The variants are timed in alternating rounds, in ABBA order, so a busy spell of a shared
 * machine falls on all of them; each figure is the median over the rounds (a speed-up is the
 * median of the per-round ratios). With 2 threads it also times what the daemon runs on 2 threads
 * (`instances: auto`): two 1-thread sessions in worker threads side by side, in runs per second.
 * Options: --rounds=N (default 7), --runs=N per round (default 40), --threads=1,2,
 * --models=vehicles,demand_lstm (folder names), --manifest=FILE (one model's manifest, anywhere).
 */
export const modelsBench: Bench = async (args) => {
  const opt = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const rounds = Number(opt("rounds") ?? 7);
  const runs = Number(opt("runs") ?? 40);
  const threadCounts = (opt("threads") ?? "1,2").split(",").map(Number);
  const root = path.join(repoRoot(), "models");
  const only = opt("models")?.split(",");
  const folders = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(root, d.name, "manifest.json")) && (only === undefined || only.includes(d.name)))
    .map((d) => d.name)
    .sort();
  const results: BenchResult[] = [];
  // --manifest=FILE: one model elsewhere (a detector added and quantized on this device).
  const manifest = opt("manifest");
  if (manifest !== undefined)
    return [await benchModel(path.resolve(manifest), path.basename(path.dirname(path.resolve(manifest))), threadCounts, rounds, runs)];
  for (const folder of folders) results.push(await benchModel(path.join(root, folder, "manifest.json"), folder, threadCounts, rounds, runs));
  return results;
};

export async function benchModel(
  manifestFile: string,
  folder: string,
  threadCounts: readonly number[],
  rounds: number,
  runs: number,
): Promise<BenchResult> {
  const name = `models: ${folder} (CPU provider, batch 1, ${rounds} rounds x ${runs} runs)`;
  let manifest: ModelManifest;
  try {
    manifest = loadManifest(manifestFile);
  } catch (err) {
    return { name, figures: { skipped: (err as Error).message } };
  }
  const variants = (Object.keys(manifest.files) as VariantName[]).filter((v) => existsSync(manifest.files[v]!));
  if (variants.length === 0) return { name, figures: { skipped: `no variant file found (${Object.values(manifest.files).join(", ")})` } };
  const log = pino({ level: "silent" });
  const figures: Record<string, number | string> = {};
  for (const threads of threadCounts) {
    const tag = `${threads} thread${threads === 1 ? "" : "s"}`;
    const sessions: { variant: VariantName; session: ModelSession; feeds: Record<string, ort.Tensor> }[] = [];
    try {
      for (const variant of variants) {
        const session = await createSession(manifest, { providers: ["cpu"], threads, variant, log });
        sessions.push({ variant, session, feeds: inputFeeds(session) });
      }
      const ms = new Map<VariantName, number[]>(variants.map((v) => [v, []]));
      for (const s of sessions) for (let i = 0; i < 10; i++) await s.session.run(s.feeds); // warm-up
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? sessions : [...sessions].reverse();
        for (const s of order) {
          const t0 = process.hrtime.bigint();
          for (let i = 0; i < runs; i++) await s.session.run(s.feeds);
          ms.get(s.variant)!.push(Number(process.hrtime.bigint() - t0) / 1e6 / runs);
        }
      }
      for (const v of variants) figures[`${v} ms, ${tag}`] = round(median(ms.get(v)!), 2);
      Object.assign(
        figures,
        speedUps(ms, (fp32, v) => fp32 / v, tag),
      );
      if (threads === 2) Object.assign(figures, await sideBySide(manifest, variants, rounds, runs));
    } catch (err) {
      figures[`error, ${tag}`] = (err as Error).message;
    } finally {
      for (const s of sessions) await s.session.release();
    }
  }
  return { name, figures };
}

/** Two 1-thread sessions per variant in worker threads, each running its own loop: runs per second of the pair. */
async function sideBySide(manifest: ModelManifest, variants: readonly VariantName[], rounds: number, runs: number): Promise<Record<string, number>> {
  const log = pino({ level: "silent" });
  const pairs: { variant: VariantName; sessions: ModelSession[]; feeds: Record<string, ort.Tensor> }[] = [];
  try {
    for (const variant of variants) {
      const sessions = [];
      for (let i = 0; i < 2; i++) sessions.push(await createSession(manifest, { providers: ["cpu"], threads: 1, variant, thread: "worker", log }));
      pairs.push({ variant, sessions, feeds: inputFeeds(sessions[0]!) });
    }
    const rate = new Map<VariantName, number[]>(variants.map((v) => [v, []]));
    const loop = async (s: ModelSession, feeds: Record<string, ort.Tensor>, n: number) => {
      for (let i = 0; i < n; i++) await s.run(feeds);
    };
    for (const p of pairs) await Promise.all(p.sessions.map((s) => loop(s, p.feeds, 5))); // warm-up
    for (let r = 0; r < rounds; r++) {
      for (const p of r % 2 === 0 ? pairs : [...pairs].reverse()) {
        const t0 = process.hrtime.bigint();
        await Promise.all(p.sessions.map((s) => loop(s, p.feeds, runs)));
        rate.get(p.variant)!.push((2 * runs) / (Number(process.hrtime.bigint() - t0) / 1e9));
      }
    }
    const figures: Record<string, number> = {};
    for (const v of variants) figures[`${v} runs/s, 2 sessions x 1 thread`] = round(median(rate.get(v)!), 1);
    return Object.assign(
      figures,
      speedUps(rate, (fp32, v) => v / fp32, "2 sessions x 1 thread"),
    );
  } finally {
    for (const p of pairs) for (const s of p.sessions) await s.terminate();
  }
}

/** Per variant other than fp32: the median over rounds of `ratio(fp32's figure, its figure)` in the same round. */
function speedUps(perRound: ReadonlyMap<VariantName, number[]>, ratio: (fp32: number, v: number) => number, tag: string): Record<string, number> {
  const base = perRound.get("fp32");
  const out: Record<string, number> = {};
  if (base === undefined) return out;
  for (const [v, xs] of perRound) if (v !== "fp32") out[`${v} speed-up over fp32, ${tag}`] = round(median(xs.map((x, i) => ratio(base[i]!, x))), 2);
  return out;
}

const median = (xs: readonly number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

/** A float32 tensor per model input, dynamic dimensions set to 1, filled with a fixed pattern in 0..1. */
function inputFeeds(s: ModelSession): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const meta of s.session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`model ${s.manifest.id}: input "${meta.name}" is not a tensor`);
    if (meta.type !== "float32") throw new Error(`model ${s.manifest.id}: input "${meta.name}" is ${meta.type}; the bench feeds float32`);
    const dims = meta.shape.map((d) => (typeof d === "number" && d > 0 ? d : 1));
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 1000) / 1000;
    feeds[meta.name] = new ort.Tensor("float32", data, dims);
  }
  return feeds;
}
