/**
 * Minimises f over R^n by the Nelder-Mead simplex (reflection 1, expansion 2, contraction 0.5,
 * shrink 0.5). Enough for the handful of smoothing parameters a classical forecaster has.
 */
export function nelderMead(
  f: (x: readonly number[]) => number,
  start: readonly number[],
  opts: { step?: number; maxEvals?: number; tol?: number } = {},
): { x: number[]; value: number; evals: number } {
  const n = start.length;
  const step = opts.step ?? 0.5;
  const maxEvals = opts.maxEvals ?? 200 * n;
  const tol = opts.tol ?? 1e-7;
  let evals = 0;
  const val = (x: number[]): number => {
    evals++;
    const v = f(x);
    return Number.isFinite(v) ? v : Number.POSITIVE_INFINITY;
  };
  const pts: { x: number[]; v: number }[] = [{ x: [...start], v: val([...start]) }];
  for (let i = 0; i < n; i++) {
    const x = [...start];
    x[i]! += step;
    pts.push({ x, v: val(x) });
  }
  while (evals < maxEvals) {
    pts.sort((a, b) => a.v - b.v);
    const best = pts[0]!;
    const worst = pts[n]!;
    if (Math.abs(worst.v - best.v) <= tol * (Math.abs(best.v) + tol)) break;
    const centroid = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) centroid[j]! += pts[i]!.x[j]! / n;
    const toward = (t: number): number[] => centroid.map((c, j) => c + t * (worst.x[j]! - c));
    const refl = toward(-1);
    const rv = val(refl);
    if (rv < best.v) {
      const exp = toward(-2);
      const ev = val(exp);
      pts[n] = ev < rv ? { x: exp, v: ev } : { x: refl, v: rv };
    } else if (rv < pts[n - 1]!.v) {
      pts[n] = { x: refl, v: rv };
    } else {
      const con = rv < worst.v ? toward(-0.5) : toward(0.5);
      const cv = val(con);
      if (cv < Math.min(rv, worst.v)) pts[n] = { x: con, v: cv };
      else {
        for (let i = 1; i <= n; i++) {
          const x = pts[i]!.x.map((xi, j) => best.x[j]! + 0.5 * (xi - best.x[j]!));
          pts[i] = { x, v: val(x) };
        }
      }
    }
  }
  pts.sort((a, b) => a.v - b.v);
  return { x: pts[0]!.x, value: pts[0]!.v, evals };
}
