/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
 * text exposition format (version 0.0.4). Parts take the registry from the composition root.
 */

type Labels = Record<string, string>;

const esc = (v: string) => (/[\\\n"]/.test(v) ? v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"') : v);

function labelKey(labels: Labels | undefined): string {
  if (!labels) return "";
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  if (keys.length === 1) return `{${keys[0]}="${esc(labels[keys[0]!]!)}"}`;
  return `{${keys
    .sort()
    .map((k) => `${k}="${esc(labels[k]!)}"`)
    .join(",")}}`;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

abstract class Metric {
  readonly name: string;
  readonly help: string;
  abstract readonly type: string;

  constructor(name: string, help: string) {
    if (!NAME.test(name)) throw new Error(`metric name "${name}" is not a valid Prometheus name`);
    this.name = name;
    this.help = help;
  }

  abstract render(): string[];
}

export class Counter extends Metric {
  readonly type = "counter";
  readonly #values = new Map<string, number>();

  inc(labels?: Labels, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.name} cannot decrease (inc by ${by})`);
    const k = labelKey(labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  get(labels?: Labels): number {
    return this.#values.get(labelKey(labels)) ?? 0;
  }

  render(): string[] {
    return [...this.#values].map(([k, v]) => `${this.name}${k} ${v}`);
  }
}

export class Gauge extends Metric {
  readonly type = "gauge";
  readonly #values = new Map<string, number>();
  readonly #collect: (() => void) | undefined;

  constructor(name: string, help: string, collect?: (g: Gauge) => void) {
    super(name, help);
    this.#collect = collect ? () => collect(this) : undefined;
  }

  set(value: number, labels?: Labels): void {
    this.#values.set(labelKey(labels), value);
  }

  get(labels?: Labels): number | undefined {
    return this.#values.get(labelKey(labels));
  }

  render(): string[] {
    this.#collect?.();
    return [...this.#values].map(([k, v]) => `${this.name}${k} ${v}`);
  }
}

export class Histogram extends Metric {
  readonly type = "histogram";
  readonly #buckets: number[];
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, buckets: number[]) {
    super(name, help);
    this.#buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(value: number, labels: Labels = {}): void {
    const k = labelKey(labels);
    let s = this.#series.get(k);
    if (!s) {
      s = { labels, counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(k, s);
    }
    for (let i = 0; i < this.#buckets.length; i++) if (value <= this.#buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  render(): string[] {
    const out: string[] = [];
    for (const [k, s] of this.#series) {
      this.#buckets.forEach((b, i) => out.push(`${this.name}_bucket${labelKey({ ...s.labels, le: String(b) })} ${s.counts[i]}`));
      out.push(`${this.name}_bucket${labelKey({ ...s.labels, le: "+Inf" })} ${s.count}`);
      out.push(`${this.name}_sum${k} ${s.sum}`);
      out.push(`${this.name}_count${k} ${s.count}`);
    }
    return out;
  }
}

export class Metrics {
  readonly #metrics = new Map<string, Metric>();

  /** The metric of that name, made by `make` only the first time (parts look metrics up per frame). */
  #get<T extends Metric>(name: string, type: string, make: () => T): T {
    const existing = this.#metrics.get(name);
    if (existing) {
      if (existing.type !== type) throw new Error(`metric ${name} already registered as a ${existing.type}`);
      return existing as T;
    }
    const m = make();
    this.#metrics.set(name, m);
    return m;
  }

  /** Registering the same name twice returns the first metric, so rebuilt parts keep their counts. */
  counter(name: string, help: string): Counter {
    return this.#get(name, "counter", () => new Counter(name, help));
  }

  gauge(name: string, help: string, collect?: (g: Gauge) => void): Gauge {
    return this.#get(name, "gauge", () => new Gauge(name, help, collect));
  }

  histogram(name: string, help: string, buckets: number[]): Histogram {
    return this.#get(name, "histogram", () => new Histogram(name, help, buckets));
  }

  /** The Prometheus text format. */
  render(): string {
    const lines: string[] = [];
    for (const m of this.#metrics.values()) {
      lines.push(`# HELP ${m.name} ${m.help.replace(/\n/g, " ")}`, `# TYPE ${m.name} ${m.type}`, ...m.render());
    }
    return `${lines.join("\n")}\n`;
  }
}
