import { wsUrl } from "./api.js";
import { el, esc } from "./dom.js";
import { drawLine, drawObjects, drawZone, fitCanvas } from "./overlay.js";
import type { CameraInfo, CountsBody, FrameHeader, Tally } from "./types.js";

type Totals = Map<string, Map<string, { in: number; out: number }>>;

function add(into: Totals, tallies: readonly Tally[]): void {
  for (const t of tallies) {
    let per = into.get(t.line_id);
    if (!per) into.set(t.line_id, (per = new Map<string, { in: number; out: number }>()));
    for (const [label, c] of Object.entries(t.counts)) {
      const cur = per.get(label) ?? { in: 0, out: 0 };
      per.set(label, { in: cur.in + c.in, out: cur.out + c.out });
    }
  }
}

/**
 * One camera, live: each WebSocket message is a picture and the detections of that same frame,
 * drawn together, so boxes never drift from the picture. Counts tick with every frame (the
 * running interval) and roll over when a counts message arrives.
 */
export class LiveCamera {
  readonly root: HTMLElement;
  readonly #canvas: HTMLCanvasElement;
  readonly #status: HTMLElement;
  readonly #table: HTMLTableSectionElement;
  #info: CameraInfo;
  #ws: WebSocket | undefined;
  #closed = false;
  #retry: number | undefined;
  #retryMs = 500;
  #drawing = false;
  #frames = 0;
  #lastFrame: FrameHeader | undefined;
  /** Crossings of the intervals that ended since the page opened. */
  readonly #done: Totals = new Map();
  #running: Tally[] = [];
  #lastInterval: CountsBody | undefined;
  #fpsTimes: number[] = [];
  /** Called whenever the camera's description arrives (after each reconnect, e.g. after a reload). */
  onHello: ((info: CameraInfo) => void) | undefined;
  /** Called when a counts message arrives. */
  onCounts: ((body: CountsBody) => void) | undefined;

  constructor(info: CameraInfo) {
    this.#info = info;
    this.root = el("section", { class: "camera", "data-camera": info.id });
    const head = el("header");
    head.append(el("h2", {}, info.id), el("span", { class: "muted" }, info.model ? `model ${info.model}` : "no detection"));
    this.#canvas = el("canvas", { class: "live", "data-camera": info.id });
    this.#status = el("div", { class: "status muted" }, "connecting…");
    const table = el("table", { class: "counts" });
    table.innerHTML = "<thead><tr><th>line</th><th>class</th><th>in</th><th>out</th><th>this interval</th></tr></thead>";
    this.#table = el("tbody");
    table.append(this.#table);
    this.root.append(head, this.#canvas, this.#status, table);
  }

  get info(): CameraInfo {
    return this.#info;
  }

  /** Frames drawn so far (tests read it from the page). */
  get frames(): number {
    return this.#frames;
  }

  get lastFrame(): FrameHeader | undefined {
    return this.#lastFrame;
  }

  connect(): void {
    if (this.#closed) return;
    const ws = new WebSocket(wsUrl(`/api/cameras/${encodeURIComponent(this.#info.id)}/live`));
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    ws.onopen = () => {
      this.#retryMs = 500;
      this.#status.textContent = "waiting for frames…";
    };
    ws.onmessage = (ev: MessageEvent<ArrayBuffer | string>) => {
      if (typeof ev.data === "string") this.#onText(ev.data);
      else void this.#onFrame(ev.data);
    };
    ws.onclose = () => {
      if (this.#closed) return;
      this.#status.textContent = "disconnected; reconnecting…";
      this.#retry = window.setTimeout(() => this.connect(), this.#retryMs);
      this.#retryMs = Math.min(this.#retryMs * 2, 5000);
    };
  }

  close(): void {
    this.#closed = true;
    window.clearTimeout(this.#retry);
    this.#ws?.close();
  }

  #onText(text: string): void {
    const msg = JSON.parse(text) as { type: string; camera?: CameraInfo; body?: CountsBody };
    if (msg.type === "hello" && msg.camera) {
      this.#info = msg.camera;
      this.onHello?.(msg.camera);
      this.#renderCounts();
    } else if (msg.type === "counts" && msg.body) {
      if (this.#lastInterval?.interval_start !== msg.body.interval_start) add(this.#done, msg.body.lines);
      this.#lastInterval = msg.body;
      this.#running = [];
      this.onCounts?.(msg.body);
      this.#renderCounts();
    }
  }

  async #onFrame(buf: ArrayBuffer): Promise<void> {
    // Frames arriving while one is being decoded are dropped: the newest wins, nothing queues.
    if (this.#drawing) return;
    this.#drawing = true;
    try {
      const view = new DataView(buf);
      const len = view.getUint32(0, true);
      const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, len))) as FrameHeader;
      const bitmap = await createImageBitmap(new Blob([new Uint8Array(buf, 4 + len)], { type: "image/jpeg" }));
      this.#draw(bitmap, header);
      bitmap.close();
      this.#lastFrame = header;
      this.#frames++;
      this.#running = header.running;
      const now = performance.now();
      this.#fpsTimes.push(now);
      while (this.#fpsTimes.length > 20) this.#fpsTimes.shift();
      const fps = this.#fpsTimes.length > 1 ? ((this.#fpsTimes.length - 1) * 1000) / (now - this.#fpsTimes[0]!) : 0;
      this.#status.textContent = `frame ${header.frame} · ${header.objects.length} objects · ${fps.toFixed(1)} fps · picture ${header.width}×${header.height} of ${header.src_width}×${header.src_height}`;
      this.#renderCounts();
    } finally {
      this.#drawing = false;
    }
  }

  #draw(bitmap: ImageBitmap, header: FrameHeader): void {
    const canvas = this.#canvas;
    const scale = fitCanvas(canvas, header.src_width / header.src_height);
    const ctx = canvas.getContext("2d")!;
    const { width: w, height: h } = canvas;
    ctx.drawImage(bitmap, 0, 0, w, h);
    for (const z of this.#info.zones) drawZone(ctx, z, w, h, scale);
    for (const l of this.#info.lines) drawLine(ctx, l, w, h, scale, this.#lineCaption(l.id));
    drawObjects(ctx, header.objects, w, h, scale);
  }

  #lineCaption(lineId: string): string {
    let n = 0;
    const totals = this.#totals().get(lineId);
    for (const c of totals?.values() ?? []) n += c.in + c.out;
    return `${n}`;
  }

  #totals(): Totals {
    const all: Totals = new Map();
    for (const [line, per] of this.#done) all.set(line, new Map([...per].map(([k, v]) => [k, { ...v }])));
    add(all, this.#running);
    return all;
  }

  #renderCounts(): void {
    const totals = this.#totals();
    const running = new Map(this.#running.map((t) => [t.line_id, t]));
    const rows: string[] = [];
    for (const l of this.#info.lines) {
      const per = totals.get(l.id);
      const labels = [...(per?.keys() ?? [])].sort();
      if (labels.length === 0)
        rows.push(`<tr data-line="${esc(l.id)}"><td>${esc(l.id)}</td><td class="muted">—</td><td>0</td><td>0</td><td>0</td></tr>`);
      for (const label of labels) {
        const c = per!.get(label)!;
        const r = running.get(l.id)?.counts[label];
        rows.push(
          `<tr data-line="${esc(l.id)}" data-label="${esc(label)}"><td>${esc(l.id)}</td><td>${esc(label)}</td><td>${c.in}</td><td>${c.out}</td><td>${r ? r.in + r.out : 0}</td></tr>`,
        );
      }
    }
    this.#table.innerHTML = rows.join("");
  }
}
