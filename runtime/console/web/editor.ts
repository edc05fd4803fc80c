import { ApiError, getJson, putJson } from "./api.js";
import { el } from "./dom.js";
import { drawLine, drawZone, fitCanvas, LINE_COLOUR, ZONE_COLOUR } from "./overlay.js";
import type { CameraInfo, GeometryView, LineSpec, Point, ReloadResult, ZoneSpec } from "./types.js";

interface EditLine extends LineSpec {
  was?: number;
}
interface EditZone extends ZoneSpec {
  was?: number;
}

/** A draggable point: a line's end or a zone's corner. */
interface Handle {
  kind: "line" | "zone";
  index: number;
  /** "from" / "to" for a line; the corner's index for a zone. */
  point: "from" | "to" | number;
}

const HIT_PX = 14;
const clamp = (v: number) => Math.min(1, Math.max(0, v));
const round = (v: number) => Math.round(v * 10_000) / 10_000;

/**
 * The line and zone editor: the camera's picture at its own resolution with its lines and zones
 * over it; drag ends and corners, flip a line's direction, name them, then save. The daemon
 * validates the change as check-config does, writes it into the config file (comments kept) and
 * reloads the camera.
 */
export class Editor {
  readonly root: HTMLElement;
  readonly #canvas: HTMLCanvasElement;
  readonly #list: HTMLElement;
  readonly #status: HTMLElement;
  readonly #picInfo: HTMLElement;
  readonly #save: HTMLButtonElement;
  #camera: string | undefined;
  #labels: string[] = [];
  #etag: string | undefined;
  #lines: EditLine[] = [];
  #zones: EditZone[] = [];
  #picture: ImageBitmap | undefined;
  #aspect = 16 / 9;
  #drag: Handle | undefined;
  #selected: { kind: "line" | "zone"; index: number } | undefined;
  #dirty = false;
  /** Resolves when the last save has been applied by the daemon (tests and the status line use it). */
  applied: Promise<void> = Promise.resolve();

  constructor() {
    this.root = el("section", { class: "editor" });
    this.#canvas = el("canvas", { class: "editor-canvas" });
    this.#picInfo = el("div", { class: "muted picinfo" });
    this.#list = el("div", { class: "items" });
    this.#status = el("div", { class: "status", role: "status" });
    this.#save = el("button", { class: "primary", id: "save" }, "Save and apply");
    this.#save.disabled = true;
    const addLine = el("button", { id: "add-line" }, "+ line");
    const addZone = el("button", { id: "add-zone" }, "+ zone");
    const reload = el("button", { id: "reload-picture" }, "New picture");
    addLine.onclick = () => this.#addLine();
    addZone.onclick = () => this.#addZone();
    reload.onclick = () => void this.#loadPicture();
    this.#save.onclick = () => void this.save();
    const side = el(
      "aside",
      {},
      el("div", { class: "toolbar" }, addLine, addZone, reload),
      this.#list,
      el("div", { class: "toolbar" }, this.#save),
      this.#status,
    );
    this.root.append(el("div", { class: "editor-main" }, this.#canvas, this.#picInfo), side);
    this.#canvas.addEventListener("pointerdown", (e) => this.#onDown(e));
    this.#canvas.addEventListener("pointermove", (e) => this.#onMove(e));
    this.#canvas.addEventListener("pointerup", (e) => this.#onUp(e));
    this.#canvas.addEventListener("pointercancel", (e) => this.#onUp(e));
    window.addEventListener("resize", () => this.#draw());
  }

  get dirty(): boolean {
    return this.#dirty;
  }

  async open(camera: CameraInfo): Promise<void> {
    this.#camera = camera.id;
    this.#status.textContent = "";
    this.#status.className = "status";
    try {
      const view = await getJson<GeometryView>(`/api/cameras/${encodeURIComponent(camera.id)}/geometry`);
      this.#take(view);
    } catch (err) {
      this.#fail(err);
    }
    await this.#loadPicture();
  }

  #take(view: GeometryView): void {
    this.#etag = view.etag;
    this.#labels = view.labels;
    this.#lines = view.lines.map((l, i) => ({ ...l, was: i }));
    this.#zones = view.zones.map((z, i) => ({ ...z, was: i }));
    this.#selected = undefined;
    this.#setDirty(false);
    this.#renderList();
    this.#draw();
  }

  async #loadPicture(): Promise<void> {
    if (!this.#camera) return;
    const res = await fetch(`/api/cameras/${encodeURIComponent(this.#camera)}/snapshot.jpg?t=${Date.now()}`, { cache: "no-store" });
    if (!res.ok) {
      this.#picInfo.textContent = `no picture yet: ${(await res.text()).trim()}`;
      window.setTimeout(() => void this.#loadPicture(), 1000);
      return;
    }
    this.#picture?.close();
    this.#picture = await createImageBitmap(await res.blob());
    this.#aspect = this.#picture.width / this.#picture.height;
    const resolution = res.headers.get("x-cityedge-resolution");
    this.#picInfo.textContent = `picture ${this.#picture.width}×${this.#picture.height} (${resolution === "camera" ? "the camera's resolution" : "model size: this camera has no stills"}), frame ${res.headers.get("x-cityedge-frame") ?? "?"}`;
    this.#canvas.dataset.width = String(this.#picture.width);
    this.#canvas.dataset.height = String(this.#picture.height);
    this.#draw();
  }

  /** Where each handle is on the page, in CSS pixels (for tests driving the mouse). */
  handles(): { kind: string; index: number; point: string | number; x: number; y: number }[] {
    const r = this.#canvas.getBoundingClientRect();
    const out: { kind: string; index: number; point: string | number; x: number; y: number }[] = [];
    this.#lines.forEach((l, index) => {
      for (const point of ["from", "to"] as const)
        out.push({ kind: "line", index, point, x: r.left + l[point][0] * r.width, y: r.top + l[point][1] * r.height });
    });
    this.#zones.forEach((z, index) =>
      z.polygon.forEach((p, point) => out.push({ kind: "zone", index, point, x: r.left + p[0] * r.width, y: r.top + p[1] * r.height })),
    );
    return out;
  }

  #pointOf(h: Handle): Point {
    return h.kind === "line" ? this.#lines[h.index]![h.point as "from" | "to"] : this.#zones[h.index]!.polygon[h.point as number]!;
  }

  #setPoint(h: Handle, p: Point): void {
    if (h.kind === "line") this.#lines[h.index]![h.point as "from" | "to"] = p;
    else this.#zones[h.index]!.polygon[h.point as number] = p;
  }

  #norm(e: PointerEvent): Point {
    const r = this.#canvas.getBoundingClientRect();
    return [round(clamp((e.clientX - r.left) / r.width)), round(clamp((e.clientY - r.top) / r.height))];
  }

  #hit(e: PointerEvent): Handle | undefined {
    const r = this.#canvas.getBoundingClientRect();
    let best: { h: Handle; d: number } | undefined;
    const consider = (h: Handle) => {
      const [x, y] = this.#pointOf(h);
      const d = Math.hypot(r.left + x * r.width - e.clientX, r.top + y * r.height - e.clientY);
      if (d <= HIT_PX && (!best || d < best.d)) best = { h, d };
    };
    this.#lines.forEach((_, index) => ["from", "to"].forEach((point) => consider({ kind: "line", index, point: point as "from" | "to" })));
    this.#zones.forEach((z, index) => z.polygon.forEach((_, point) => consider({ kind: "zone", index, point })));
    return best?.h;
  }

  #onDown(e: PointerEvent): void {
    const h = this.#hit(e);
    if (!h) return;
    this.#drag = h;
    this.#selected = { kind: h.kind, index: h.index };
    this.#canvas.setPointerCapture(e.pointerId);
    this.#renderList();
    this.#draw();
  }

  #onMove(e: PointerEvent): void {
    if (!this.#drag) {
      this.#canvas.style.cursor = this.#hit(e) ? "grab" : "default";
      return;
    }
    this.#setPoint(this.#drag, this.#norm(e));
    this.#setDirty(true);
    this.#draw();
  }

  #onUp(e: PointerEvent): void {
    if (!this.#drag) return;
    this.#setPoint(this.#drag, this.#norm(e));
    this.#drag = undefined;
    this.#setDirty(true);
    this.#renderList();
    this.#draw();
  }

  #uniqueId(base: string, taken: { id: string }[]): string {
    for (let i = 1; ; i++) if (!taken.some((t) => t.id === `${base}-${i}`)) return `${base}-${i}`;
  }

  #addLine(): void {
    this.#lines.push({ id: this.#uniqueId("line", this.#lines), from: [0.3, 0.5], to: [0.7, 0.5] });
    this.#selected = { kind: "line", index: this.#lines.length - 1 };
    this.#setDirty(true);
    this.#renderList();
    this.#draw();
  }

  #addZone(): void {
    this.#zones.push({
      id: this.#uniqueId("zone", this.#zones),
      polygon: [
        [0.35, 0.35],
        [0.65, 0.35],
        [0.65, 0.65],
        [0.35, 0.65],
      ],
    });
    this.#selected = { kind: "zone", index: this.#zones.length - 1 };
    this.#setDirty(true);
    this.#renderList();
    this.#draw();
  }

  #setDirty(d: boolean): void {
    this.#dirty = d;
    this.#save.disabled = !d;
  }

  #classesEditor(item: { classes?: string[] }): HTMLElement {
    const box = el("details", { class: "classes" }, el("summary", {}, item.classes ? `classes: ${item.classes.join(", ")}` : "classes: all"));
    for (const label of this.#labels) {
      const cb = el("input", { type: "checkbox" });
      cb.checked = item.classes?.includes(label) ?? false;
      cb.onchange = () => {
        const set = new Set(item.classes ?? []);
        if (cb.checked) set.add(label);
        else set.delete(label);
        if (set.size === 0) delete item.classes;
        else item.classes = this.#labels.filter((l) => set.has(l));
        this.#setDirty(true);
        box.querySelector("summary")!.textContent = item.classes ? `classes: ${item.classes.join(", ")}` : "classes: all";
      };
      box.append(el("label", {}, cb, ` ${label}`));
    }
    return box;
  }

  #renderList(): void {
    const items: HTMLElement[] = [];
    const row = (kind: "line" | "zone", index: number, item: EditLine | EditZone, extra: HTMLElement[]) => {
      const name = el("input", { value: item.id, "aria-label": `${kind} name`, class: "name", "data-kind": kind, "data-index": String(index) });
      name.oninput = () => {
        item.id = name.value.trim();
        this.#setDirty(true);
        this.#draw();
      };
      const del = el("button", { title: `delete this ${kind}` }, "delete");
      del.onclick = () => {
        if (kind === "line") this.#lines.splice(index, 1);
        else this.#zones.splice(index, 1);
        this.#selected = undefined;
        this.#setDirty(true);
        this.#renderList();
        this.#draw();
      };
      const sel = this.#selected?.kind === kind && this.#selected.index === index;
      const swatch = el("span", { class: "swatch" });
      // A property, not a style attribute: the page's content security policy allows no inline styles.
      swatch.style.background = kind === "line" ? LINE_COLOUR : ZONE_COLOUR;
      const div = el("div", { class: `item${sel ? " selected" : ""}` }, swatch, name, ...extra, del, this.#classesEditor(item));
      div.onclick = () => {
        if (this.#selected?.kind === kind && this.#selected.index === index) return;
        this.#selected = { kind, index };
        for (const d of this.#list.querySelectorAll(".item")) d.classList.remove("selected");
        div.classList.add("selected");
        this.#draw();
      };
      items.push(div);
    };
    this.#lines.forEach((l, i) => {
      const flip = el("button", { title: "swap the ends: in becomes out", class: "flip", "data-index": String(i) }, "flip direction");
      flip.onclick = () => {
        [l.from, l.to] = [l.to, l.from];
        this.#setDirty(true);
        this.#draw();
      };
      const at = el("span", { class: "muted coords" }, `(${l.from.join(", ")}) → (${l.to.join(", ")})`);
      row("line", i, l, [flip, at]);
    });
    this.#zones.forEach((z, i) => row("zone", i, z, [el("span", { class: "muted coords" }, `${z.polygon.length} corners`)]));
    if (items.length === 0) items.push(el("p", { class: "muted" }, "No lines or zones yet."));
    this.#list.replaceChildren(...items);
  }

  #draw(): void {
    const canvas = this.#canvas;
    const scale = fitCanvas(canvas, this.#aspect);
    const ctx = canvas.getContext("2d")!;
    const { width: w, height: h } = canvas;
    ctx.fillStyle = "#222";
    ctx.fillRect(0, 0, w, h);
    if (this.#picture) ctx.drawImage(this.#picture, 0, 0, w, h);
    this.#zones.forEach((z, i) => drawZone(ctx, z, w, h, scale, this.#selected?.kind === "zone" && this.#selected.index === i));
    this.#lines.forEach((l, i) => drawLine(ctx, l, w, h, scale, undefined, this.#selected?.kind === "line" && this.#selected.index === i));
    // Handles on top.
    for (const hd of this.handles()) {
      const p = this.#pointOf({ kind: hd.kind as "line" | "zone", index: hd.index, point: hd.point as "from" });
      ctx.beginPath();
      ctx.arc(p[0] * w, p[1] * h, 7 * scale, 0, Math.PI * 2);
      ctx.fillStyle = "rgba(255,255,255,0.9)";
      ctx.fill();
      ctx.strokeStyle = hd.kind === "line" ? LINE_COLOUR : ZONE_COLOUR;
      ctx.lineWidth = 3 * scale;
      ctx.stroke();
    }
  }

  #fail(err: unknown): void {
    this.#status.className = "status error";
    const problems = err instanceof ApiError ? err.problems : [];
    this.#status.replaceChildren(
      el("p", {}, (err as Error).message),
      ...(problems.length ? [el("ul", {}, ...problems.map((p) => el("li", {}, p)))] : []),
    );
  }

  /** Sends the lines and zones; resolves once the daemon has saved them (`applied` then follows the reload). */
  async save(): Promise<void> {
    const camera = this.#camera;
    if (!camera) return;
    this.#save.disabled = true;
    this.#status.className = "status";
    this.#status.textContent = "saving…";
    const body = {
      etag: this.#etag,
      lines: this.#lines.map((l) => ({
        id: l.id,
        from: l.from,
        to: l.to,
        ...(l.classes ? { classes: l.classes } : {}),
        ...(l.was !== undefined ? { was: l.was } : {}),
      })),
      zones: this.#zones.map((z) => ({
        id: z.id,
        polygon: z.polygon,
        ...(z.classes ? { classes: z.classes } : {}),
        ...(z.was !== undefined ? { was: z.was } : {}),
      })),
    };
    try {
      const r = await putJson<{ etag: string; reload: ReloadResult }>(`/api/cameras/${encodeURIComponent(camera)}/geometry`, body);
      this.#etag = r.etag;
      this.#lines.forEach((l, i) => (l.was = i));
      this.#zones.forEach((z, i) => (z.was = i));
      this.#setDirty(false);
      const restarted = r.reload.restarted?.length ? r.reload.restarted.join(", ") : "nothing";
      this.#status.textContent = `saved to the config file and applied (restarted: ${restarted}); waiting for the camera…`;
      this.applied = this.#waitApplied(camera, body.lines, restarted);
      await this.applied;
    } catch (err) {
      this.#setDirty(true);
      this.#fail(err);
    }
  }

  async #waitApplied(camera: string, lines: LineSpec[], restarted: string): Promise<void> {
    const want = JSON.stringify(lines.map((l) => [l.id, l.from, l.to]));
    for (let i = 0; i < 240; i++) {
      try {
        const { cameras } = await getJson<{ cameras: CameraInfo[] }>("/api/cameras");
        const cam = cameras.find((c) => c.id === camera);
        if (cam && JSON.stringify(cam.lines.map((l) => [l.id, l.from, l.to])) === want && cam.pipeline === "running") {
          this.#status.className = "status ok";
          this.#status.textContent = `applied: camera ${camera} counts with the new lines and zones (restarted: ${restarted})`;
          document.dispatchEvent(new CustomEvent("cityedge:applied", { detail: { camera } }));
          return;
        }
      } catch (err) {
        // A reload that rebuilds the endpoint itself (its own settings changed) makes it briefly unreachable: keep asking.
        void err;
      }
      await new Promise((r) => window.setTimeout(r, 500));
    }
    this.#status.className = "status error";
    this.#status.textContent = "saved, but the camera did not come back with the new lines within 2 minutes: see the daemon's log";
  }
}
