/**
 * Ridge regression from accumulated normal equations: add rows, then solve for any penalty.
 * Features are standardised with the training rows' mean and spread (a constant feature gets
 * weight 0), the target is centred, and the intercept is not penalised.
 */
export class RidgeAccumulator {
  readonly p: number;
  #n = 0;
  readonly #sx: Float64Array;
  #sy = 0;
  readonly #xx: Float64Array;
  readonly #xy: Float64Array;

  constructor(p: number) {
    this.p = p;
    this.#sx = new Float64Array(p);
    this.#xx = new Float64Array(p * p);
    this.#xy = new Float64Array(p);
  }

  get n(): number {
    return this.#n;
  }

  add(x: ArrayLike<number>, y: number): void {
    const p = this.p;
    this.#n++;
    this.#sy += y;
    for (let i = 0; i < p; i++) {
      const xi = x[i]!;
      this.#sx[i]! += xi;
      this.#xy[i]! += xi * y;
      for (let j = 0; j <= i; j++) this.#xx[i * p + j]! += xi * x[j]!;
    }
  }

  /** Coefficients in the original units and the intercept; `lambda` is per row (scaled by n). */
  solve(lambda: number): { beta: Float64Array; intercept: number } {
    const p = this.p;
    const n = this.#n;
    const beta = new Float64Array(p);
    if (n === 0) return { beta, intercept: 0 };
    const mean = Array.from(this.#sx, (s) => s / n);
    const my = this.#sy / n;
    // centred cross-products, then scaled to unit variance
    const cov = new Float64Array(p * p);
    for (let i = 0; i < p; i++) for (let j = 0; j <= i; j++) cov[i * p + j] = cov[j * p + i] = this.#xx[i * p + j]! - n * mean[i]! * mean[j]!;
    const sd = Array.from({ length: p }, (_, i) => Math.sqrt(Math.max(0, cov[i * p + i]!) / n));
    const live = sd.map((s) => s > 1e-12);
    const a = new Float64Array(p * p);
    const b = new Float64Array(p);
    for (let i = 0; i < p; i++) {
      if (!live[i]) {
        a[i * p + i] = 1;
        continue;
      }
      b[i] = (this.#xy[i]! - n * mean[i]! * my) / sd[i]!;
      for (let j = 0; j < p; j++) if (live[j]) a[i * p + j] = cov[i * p + j]! / (sd[i]! * sd[j]!);
      a[i * p + i]! += lambda * n;
    }
    const z = choleskySolve(a, b, p);
    let intercept = my;
    for (let i = 0; i < p; i++) {
      if (!live[i]) continue;
      beta[i] = z[i]! / sd[i]!;
      intercept -= beta[i]! * mean[i]!;
    }
    return { beta, intercept };
  }
}

/** Solves A z = b for a symmetric positive definite A (row-major p x p). */
export function choleskySolve(a: Float64Array, b: Float64Array, p: number): Float64Array {
  const l = new Float64Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * p + j]!;
      for (let k = 0; k < j; k++) s -= l[i * p + k]! * l[j * p + k]!;
      if (i === j) l[i * p + i] = Math.sqrt(Math.max(s, 1e-12));
      else l[i * p + j] = s / l[j * p + j]!;
    }
  }
  const y = new Float64Array(p);
  for (let i = 0; i < p; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * p + k]! * y[k]!;
    y[i] = s / l[i * p + i]!;
  }
  const z = new Float64Array(p);
  for (let i = p - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < p; k++) s -= l[k * p + i]! * z[k]!;
    z[i] = s / l[i * p + i]!;
  }
  return z;
}
