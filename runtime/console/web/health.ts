import { getJson } from "./api.js";
import { el, esc } from "./dom.js";

interface PartHealth {
  state: string;
  error?: string;
  [k: string]: unknown;
}

interface Summary {
  state: "ok" | "degraded";
  device_id: string;
  version: string;
  uptime_s: number;
  rss_bytes: number;
  event_loop_lag_ms: { p50_ms: number; p99_ms: number; max_ms: number };
  outbox?: { depth: number; bytes: number; dropped: number; disk_full?: boolean; free_bytes?: number; oldest_age_s?: number };
  mqtt: PartHealth;
  cameras: Record<string, PartHealth>;
  models: Record<string, PartHealth>;
  meters: Record<string, PartHealth>;
  parts: Record<string, PartHealth>;
  problems: string[];
}

const badge = (state: string) =>
  `<span class="badge ${state === "running" || state === "ok" ? "ok" : state === "stopped" ? "" : "bad"}">${esc(state)}</span>`;
const v = (x: unknown) =>
  x === undefined || x === null ? "—" : esc(typeof x === "string" || typeof x === "number" || typeof x === "boolean" ? String(x) : JSON.stringify(x));
/** Skipped providers are names or `{ provider, reason }`: the names. */
const providers = (x: unknown): string =>
  Array.isArray(x)
    ? x.map((p) => (typeof p === "object" && p !== null ? String((p as { provider?: unknown }).provider) : String(p))).join(", ") || "none"
    : "—";
const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

/** The daemon's health: parts and their state, providers and model versions, the outbox, the uplink, drops. */
export class Health {
  readonly root: HTMLElement;
  readonly #body: HTMLElement;
  #timer: number | undefined;

  constructor() {
    this.root = el("section", { class: "health" });
    this.#body = el("div");
    const links = el("p", { class: "muted" });
    links.innerHTML = 'Raw: <a href="/healthz">/healthz</a> · <a href="/metrics">/metrics</a> (Prometheus)';
    this.root.append(links, this.#body);
  }

  show(): void {
    void this.refresh();
    window.clearInterval(this.#timer);
    this.#timer = window.setInterval(() => void this.refresh(), 2000);
  }

  hide(): void {
    window.clearInterval(this.#timer);
  }

  async refresh(): Promise<void> {
    let s: Summary;
    try {
      s = await getJson<Summary>("/healthz");
    } catch (err) {
      this.#body.innerHTML = `<p class="error">cannot read /healthz: ${esc((err as Error).message)}</p>`;
      return;
    }
    const html: string[] = [];
    html.push(
      `<h3>${badge(s.state)} ${esc(s.device_id)} · cityedge ${esc(s.version)} · up ${Math.round(s.uptime_s / 60)} min · memory ${mb(s.rss_bytes)} · event-loop lag p99 ${s.event_loop_lag_ms.p99_ms} ms</h3>`,
    );
    if (s.problems.length > 0) html.push(`<ul class="problems">${s.problems.map((p) => `<li>${esc(p)}</li>`).join("")}</ul>`);
    const ob = s.outbox;
    html.push("<h3>Uplink and outbox</h3>");
    html.push(
      table(
        ["MQTT", "broker", "outbox depth", "outbox bytes", "oldest waiting", "dropped", "disk"],
        [
          [
            badge(s.mqtt.state),
            v(s.mqtt.url ?? s.mqtt.broker),
            v(ob?.depth),
            ob ? mb(ob.bytes) : "—",
            ob?.oldest_age_s !== undefined ? `${ob.oldest_age_s} s` : "—",
            v(ob?.dropped),
            ob?.disk_full ? '<span class="badge bad">full</span>' : ob?.free_bytes !== undefined ? `${mb(ob.free_bytes)} free` : "—",
          ],
        ],
      ),
    );
    html.push("<h3>Cameras</h3>");
    html.push(
      table(
        ["camera", "state", "source", "size", "fps in", "frames", "dropped", "corrupt", "restarts", "last error"],
        Object.entries(s.cameras).map(([id, c]) => [
          esc(id),
          badge(c.state),
          v(c.source),
          v(c.src_size),
          v(c.fps_in ?? c.fps),
          v(c.frames_in ?? c.frames),
          v(c.dropped),
          v(c.corrupt),
          v(c.restarts),
          v(c.last_error ?? c.error),
        ]),
      ),
    );
    html.push("<h3>Models</h3>");
    html.push(
      table(
        ["model", "state", "provider", "variant", "version", "instances", "runs", "inference ms", "errors", "skipped providers"],
        Object.entries(s.models).map(([id, m]) => [
          esc(id),
          badge(m.state),
          v(m.provider),
          v(m.variant),
          v(m.model_version),
          v(m.instances),
          v(m.runs),
          v(m.inference_ms_avg),
          v(m.errors),
          v(providers(m.skipped_providers)),
        ]),
      ),
    );
    html.push("<h3>Parts</h3>");
    html.push(
      table(
        ["part", "state", "error"],
        Object.entries(s.parts).map(([name, p]) => [esc(name), badge(p.state), v(p.error)]),
      ),
    );
    this.#body.innerHTML = html.join("");
  }
}
