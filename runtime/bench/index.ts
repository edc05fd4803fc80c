/**
 * `cityedge bench [--json]`: runs every benchmark and prints figures. Benchmarks register here;
 * none of them is a test, and none fails on speed.
 */
export interface BenchResult {
  name: string;
  figures: Record<string, number | string>;
}

export type Bench = (args: string[]) => Promise<BenchResult[]>;

export const BENCHES: { name: string; load: () => Promise<Bench> }[] = [];

export async function runBench(args: string[]): Promise<number> {
  const json = args.includes("--json");
  const only = args.find((a) => !a.startsWith("--"));
  const results: BenchResult[] = [];
  for (const b of BENCHES) {
    if (only !== undefined && b.name !== only) continue;
    const fn = await b.load();
    results.push(...(await fn(args)));
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
  } else {
    for (const r of results) {
      process.stdout.write(`${r.name}\n`);
      for (const [k, v] of Object.entries(r.figures)) process.stdout.write(`  ${k.padEnd(36)} ${v}\n`);
    }
    if (results.length === 0) process.stdout.write("no benchmarks registered\n");
  }
  return 0;
}
