/**
 * Float64 reference decoders, written from each layout's description and nothing of the
 * runtime's: plain loops, `Number` arithmetic, no shared helpers. Each returns every box whose
 * best class score reaches `thr`, in model-input pixels.
 */
export interface RefBox {
  box: [number, number, number, number];
  score: number;
  cls: number;
}

const num = (a: ArrayLike<number | bigint>) => Array.from(a as ArrayLike<number>, (v) => Number(v));

function best(scores: number[], thr: number): { cls: number; score: number } | undefined {
  let cls = 0;
  for (let c = 1; c < scores.length; c++) if (scores[c]! > scores[cls]!) cls = c;
  return scores[cls]! >= thr ? { cls, score: scores[cls]! } : undefined;
}

const centre = (cx: number, cy: number, w: number, h: number): [number, number, number, number] => [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];

/** Cells of each stride in flattening order: [x, y, stride]. */
function cells(width: number, height: number, strides: number[], round: (v: number) => number): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (const s of strides) for (let y = 0; y < round(height / s); y++) for (let x = 0; x < round(width / s); x++) out.push([x, y, s]);
  return out;
}

export function refYolov8(data: ArrayLike<number>, ch: number, n: number, thr: number): RefBox[] {
  const v = num(data);
  const res: RefBox[] = [];
  for (let i = 0; i < n; i++) {
    const b = best(
      Array.from({ length: ch - 4 }, (_, c) => v[(4 + c) * n + i]!),
      thr,
    );
    if (b) res.push({ ...b, box: centre(v[i]!, v[n + i]!, v[2 * n + i]!, v[3 * n + i]!) });
  }
  return res;
}

export function refYolov5(data: ArrayLike<number>, n: number, width: number, thr: number): RefBox[] {
  const v = num(data);
  const res: RefBox[] = [];
  for (let i = 0; i < n; i++) {
    const r = v.slice(i * width, (i + 1) * width);
    const b = best(
      r.slice(5).map((s) => s * r[4]!),
      thr,
    );
    if (b) res.push({ ...b, box: centre(r[0]!, r[1]!, r[2]!, r[3]!) });
  }
  return res;
}

export function refYolox(data: ArrayLike<number>, w: number, h: number, strides: number[], width: number, thr: number): RefBox[] {
  const v = num(data);
  const res: RefBox[] = [];
  cells(w, h, strides, Math.floor).forEach(([gx, gy, s], i) => {
    const r = v.slice(i * width, (i + 1) * width);
    const b = best(
      r.slice(5).map((x) => x * r[4]!),
      thr,
    );
    if (b) res.push({ ...b, box: centre((r[0]! + gx) * s, (r[1]! + gy) * s, Math.exp(r[2]!) * s, Math.exp(r[3]!) * s) });
  });
  return res;
}

export function refEnd2end(data: ArrayLike<number>, k: number, numClasses: number, thr: number): RefBox[] {
  const v = num(data);
  const res: RefBox[] = [];
  for (let i = 0; i < k; i++) {
    const [x1, y1, x2, y2, score, cls] = v.slice(i * 6, i * 6 + 6) as [number, number, number, number, number, number];
    if (score >= thr && cls >= 0 && cls < numClasses) res.push({ box: [x1, y1, x2, y2], score, cls: Math.round(cls) });
  }
  return res;
}

export function refRtdetr(data: ArrayLike<number>, k: number, width: number, w: number, h: number, thr: number, logits = false): RefBox[] {
  const v = num(data);
  const res: RefBox[] = [];
  for (let i = 0; i < k; i++) {
    const r = v.slice(i * width, (i + 1) * width);
    const b = best(
      r.slice(4).map((x) => (logits ? 1 / (1 + Math.exp(-x)) : x)),
      thr,
    );
    if (b) res.push({ ...b, box: centre(r[0]! * w, r[1]! * h, r[2]! * w, r[3]! * h) });
  }
  return res;
}

/** Expected distance of one side: softmax over the bins, Σ i·p_i. */
function integral(logits: number[]): number {
  const m = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.reduce((a, p, i) => a + (p / sum) * i, 0);
}

function gfl(cls: number[], reg: number[], cx: number, cy: number, s: number, w: number, h: number, thr: number): RefBox | undefined {
  const b = best(cls, thr);
  if (!b) return undefined;
  const k = reg.length / 4;
  const [l, t, r, btm] = [0, 1, 2, 3].map((side) => integral(reg.slice(side * k, (side + 1) * k)) * s) as [number, number, number, number];
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  return { ...b, box: [clip(cx - l, w), clip(cy - t, h), clip(cx + r, w), clip(cy + btm, h)] };
}

/** NanoDet per-stride outputs: cls[level] [HW, C], reg[level] [HW, 4k]; prior centres at (x + offset) * stride. */
export function refNanodet(
  cls: ArrayLike<number>[],
  reg: ArrayLike<number>[],
  w: number,
  h: number,
  strides: number[],
  numClasses: number,
  offset: number,
  thr: number,
): RefBox[] {
  const res: RefBox[] = [];
  strides.forEach((s, level) => {
    const c = num(cls[level]!);
    const r = num(reg[level]!);
    const gw = Math.ceil(w / s);
    const hw = gw * Math.ceil(h / s);
    const rw = r.length / hw;
    for (let i = 0; i < hw; i++) {
      const b = gfl(
        c.slice(i * numClasses, (i + 1) * numClasses),
        r.slice(i * rw, (i + 1) * rw),
        ((i % gw) + offset) * s,
        (Math.floor(i / gw) + offset) * s,
        s,
        w,
        h,
        thr,
      );
      if (b) res.push(b);
    }
  });
  return res;
}

/** NanoDet-Plus merged output [N, C + 4k], levels concatenated, prior centres at x * stride. */
export function refNanodetPlus(
  data: ArrayLike<number>,
  w: number,
  h: number,
  strides: number[],
  numClasses: number,
  width: number,
  thr: number,
): RefBox[] {
  const v = num(data);
  const res: RefBox[] = [];
  cells(w, h, strides, Math.ceil).forEach(([gx, gy, s], i) => {
    const row = v.slice(i * width, (i + 1) * width);
    const b = gfl(row.slice(0, numClasses), row.slice(numClasses), gx * s, gy * s, s, w, h, thr);
    if (b) res.push(b);
  });
  return res;
}

/** TF-OD style: boxes [K, 4] ymin, xmin, ymax, xmax normalized; scores [K]; classes [K]; count valid rows. */
export function refSsd(
  boxes: ArrayLike<number>,
  scores: ArrayLike<number>,
  classes: ArrayLike<number | bigint>,
  count: number,
  w: number,
  h: number,
  numClasses: number,
  thr: number,
): RefBox[] {
  const b = num(boxes);
  const s = num(scores);
  const c = num(classes);
  const res: RefBox[] = [];
  for (let i = 0; i < count; i++) {
    if (s[i]! < thr || c[i]! < 0 || c[i]! >= numClasses) continue;
    res.push({ box: [b[i * 4 + 1]! * w, b[i * 4]! * h, b[i * 4 + 3]! * w, b[i * 4 + 2]! * h], score: s[i]!, cls: c[i]! });
  }
  return res;
}
