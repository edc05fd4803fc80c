import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { EXIT_FATAL, type CliCommand } from "./command.js";

const BENCH_INDEX = new URL("../../bench/index.js", import.meta.url);

export const benchCommand: CliCommand = {
  name: "bench",
  synopsis: "bench [--json] [NAME] [OPTIONS]",
  summary: "run the benchmarks (all, or the one named); figures, never pass/fail",
  help: `Usage: cityedge bench [--json] [NAME] [OPTIONS]

Runs the benchmarks in bench/ and prints their figures (--json: one JSON document). NAME runs
one benchmark; each takes its own options (e.g. --duration=S, --rounds=N), listed in docs/benchmarks.md.
Benchmarks live outside the shipped runtime tree: an installed device without bench/ says so.

Benchmarks: camera, detect, mqtt, meters, forecast, models, gpu, capacity, console, operate.

  cityedge bench capacity [--model ID|MANIFEST] [--variant fp32,int8] [--gating on,off]
      [--scene busy,quiet] [--fps 10] [--max-cameras N] [--cameras N] [--seconds S]
      [--warmup S] [--threads N] [--clip FILE] [--json]
    How many cameras at --fps this device sustains with < 1 % of frames dropped, and the CPU
    per camera: one row per variant x gating x scene (comma lists). Name the benchmark first.`,
  async run(args) {
    // From a checkout under tsx the sources are .ts; the compiled tree has .js.
    const ts = new URL("../../bench/index.ts", import.meta.url);
    const target = existsSync(fileURLToPath(BENCH_INDEX)) ? BENCH_INDEX : existsSync(fileURLToPath(ts)) ? ts : undefined;
    if (target === undefined) {
      process.stderr.write("cityedge bench: the benchmarks (bench/) are not installed in this build; run them from a checkout\n");
      return EXIT_FATAL;
    }
    const { runBench } = (await import(target.href)) as { runBench: (a: string[]) => Promise<number> };
    return runBench(args);
  },
};
