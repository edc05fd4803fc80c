import uPlot from "uplot";
import { getJson } from "./api.js";
import { el } from "./dom.js";
import type { CameraInfo } from "./types.js";

interface CountsHistory {
  camera: string;
  from: number;
  to: number;
  step_ms: number;
  source: "raw" | "buckets";
  t: number[];
  series: { line: string; label: string; dir: "in" | "out"; values: (number | null)[] }[];
}

interface ForecastSeries {
  id: string;
  source: string;
  unit: string;
  step_s: number;
}

interface ForecastHistory {
  id: string;
  unit: string;
  step_s: number;
  actual: { t: number[]; v: (number | null)[] };
  forecasts: { issued_at: number; t: number[]; v: number[]; lo?: number[]; hi?: number[] }[];
}

const duration = (ms: number): string => (ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`);

const PALETTE = ["#ff9500", "#34c759", "#007aff", "#ff3b30", "#af52de", "#00c7be", "#ffcc00", "#ff2d55", "#8e8e93", "#5856d6"];

const axes = (unit: string): uPlot.Axis[] => [
  { stroke: "#9aa7b4", grid: { stroke: "#2a3642" }, ticks: { stroke: "#2a3642" } },
  { stroke: "#9aa7b4", grid: { stroke: "#2a3642" }, ticks: { stroke: "#2a3642" }, label: unit, size: 56 },
];

/** Joins time series on their union of times (uPlot wants one x array); missing values are null. */
function align(xs: number[][], ys: (number | null)[][]): uPlot.AlignedData {
  const all = [...new Set(xs.flat())].sort((a, b) => a - b);
  const at = new Map(all.map((t, i) => [t, i]));
  const out: (number | null)[][] = ys.map(() => new Array<number | null>(all.length).fill(null));
  ys.forEach((y, s) => xs[s]!.forEach((t, i) => (out[s]![at.get(t)!] = y[i] ?? null)));
  return [all.map((t) => t / 1000), ...out] as uPlot.AlignedData;
}

/**
 * Counts per line and class over time, from the daemon's history store, and each forecast
 * against the readings it forecast, with its interval when the forecast has one.
 */
export class Charts {
  readonly root: HTMLElement;
  readonly #body: HTMLElement;
  readonly #range: HTMLSelectElement;
  #plots: uPlot[] = [];
  #cameras: CameraInfo[] = [];
  #timer: number | undefined;

  constructor() {
    this.root = el("section", { class: "charts" });
    this.#range = el("select", { id: "range" });
    for (const [v, t] of [
      ["30", "last 30 minutes"],
      ["60", "last hour"],
      ["360", "last 6 hours"],
      ["1440", "last 24 hours"],
      ["10080", "last 7 days"],
    ] as const)
      this.#range.append(el("option", { value: v }, t));
    this.#range.value = "60";
    this.#range.onchange = () => void this.refresh();
    this.#body = el("div");
    this.root.append(el("div", { class: "toolbar" }, el("label", {}, "Counts over ", this.#range)), this.#body);
  }

  show(cameras: CameraInfo[]): void {
    this.#cameras = cameras.filter((c) => c.model !== null);
    void this.refresh();
    window.clearInterval(this.#timer);
    this.#timer = window.setInterval(() => void this.refresh(), 15_000);
  }

  hide(): void {
    window.clearInterval(this.#timer);
  }

  async refresh(): Promise<void> {
    for (const p of this.#plots) p.destroy();
    this.#plots = [];
    const blocks: HTMLElement[] = [];
    const width = Math.max(320, Math.min(1100, this.root.clientWidth - 16));
    for (const cam of this.#cameras) {
      const h = await getJson<CountsHistory>(`/api/cameras/${encodeURIComponent(cam.id)}/counts?minutes=${this.#range.value}`).catch(
        (err: Error) => err,
      );
      const block = el(
        "div",
        { class: "chart", "data-camera": cam.id },
        el("h3", {}, `${cam.id}: crossings per ${h instanceof Error ? "interval" : duration(h.step_ms)}`),
      );
      blocks.push(block);
      if (h instanceof Error) {
        block.append(el("p", { class: "muted" }, h.message));
        continue;
      }
      const lines = [...new Set([...cam.lines.map((l) => l.id), ...h.series.map((s) => s.line)])];
      for (const line of lines) {
        const ss = h.series.filter((s) => s.line === line);
        const sub = el("div", { class: "plot", "data-line": line });
        block.append(el("h4", {}, `line ${line}`), sub);
        if (h.t.length === 0) {
          sub.append(el("p", { class: "muted" }, "no counts recorded in this range yet"));
          continue;
        }
        const columns: (number | null)[][] = [h.t.map((t) => t / 1000), ...ss.map((s) => s.values)];
        const series: uPlot.Series[] = [
          {},
          ...ss.map((s, i) => ({ label: `${s.label} ${s.dir}`, stroke: PALETTE[i % PALETTE.length]!, width: 2, points: { show: h.t.length < 120 } })),
        ];
        if (ss.length === 0) {
          columns.push(h.t.map(() => 0));
          series.push({ label: "no crossings", stroke: "#8e8e93" });
        }
        this.#plots.push(
          new uPlot(
            {
              width,
              height: 200,
              series,
              axes: axes("crossings"),
              scales: { x: { time: true, range: [h.t[0]! / 1000, h.to / 1000] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
            },
            columns as uPlot.AlignedData,
            sub,
          ),
        );
      }
    }
    blocks.push(await this.#forecasts(width));
    this.#body.replaceChildren(...blocks);
  }

  async #forecasts(width: number): Promise<HTMLElement> {
    const block = el("div", { class: "chart forecasts" }, el("h3", {}, "Forecasts against the readings"));
    const list = await getJson<{ series: ForecastSeries[] }>("/api/forecasts").catch((err: Error) => err);
    if (list instanceof Error) {
      block.append(el("p", { class: "muted" }, list.message));
      return block;
    }
    if (list.series.length === 0) block.append(el("p", { class: "muted" }, "No forecasts configured."));
    for (const s of list.series) {
      const h = await getJson<ForecastHistory>(`/api/forecasts/${encodeURIComponent(s.id)}?hours=72`).catch((err: Error) => err);
      const sub = el("div", { class: "plot", "data-forecast": s.id });
      block.append(el("h4", {}, `${s.id} (${s.source})`), sub);
      if (h instanceof Error) {
        sub.append(el("p", { class: "muted" }, h.message));
        continue;
      }
      // The actual readings, the newest forecast and the one before it, with their intervals.
      const shown = h.forecasts.slice(-2);
      const xs: number[][] = [h.actual.t];
      const ys: (number | null)[][] = [h.actual.v];
      const series: uPlot.Series[] = [{}, { label: "actual", stroke: "#e6edf3", width: 2 }];
      const bands: uPlot.Band[] = [];
      shown.forEach((f, i) => {
        const colour = i === shown.length - 1 ? "#ff9500" : "#64d2ff";
        const name = `forecast ${new Date(f.issued_at).toISOString().slice(5, 16).replace("T", " ")}`;
        xs.push(f.t);
        ys.push(f.v);
        series.push({ label: name, stroke: colour, width: 2, dash: [6, 4] });
        // The P10..P90 band of the forecaster's backtest errors.
        if (f.lo && f.hi) {
          xs.push(f.t, f.t);
          ys.push(f.lo, f.hi);
          const lo = series.length;
          series.push({ label: `${name} P10`, stroke: colour, width: 0.5 }, { label: `${name} P90`, stroke: colour, width: 0.5 });
          bands.push({ series: [lo + 1, lo], fill: `${colour}33` });
        }
      });
      if (h.actual.t.length === 0 && shown.length === 0) {
        sub.append(el("p", { class: "muted" }, "nothing recorded in this range yet"));
        continue;
      }
      this.#plots.push(new uPlot({ width, height: 240, series, bands, axes: axes(h.unit) }, align(xs, ys), sub));
    }
    return block;
  }
}
