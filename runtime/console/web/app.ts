import "uplot/dist/uPlot.min.css";
import "./style.css";
import { getJson } from "./api.js";
import { Charts } from "./charts.js";
import { el } from "./dom.js";
import { Editor } from "./editor.js";
import { Health } from "./health.js";
import { LiveCamera } from "./live.js";
import type { CameraInfo } from "./types.js";

type Tab = "cameras" | "editor" | "charts" | "health";

/** What the page exposes for tests that drive it (and for a curious operator's devtools). */
export interface ConsoleHandle {
  live: Map<string, LiveCamera>;
  editor: Editor;
  charts: Charts;
  health: Health;
  show(tab: Tab, camera?: string): Promise<void>;
}

declare global {
  interface Window {
    cityedgeConsole?: ConsoleHandle;
  }
}

async function main(): Promise<void> {
  const { device_id, cameras } = await getJson<{ device_id: string; cameras: CameraInfo[] }>("/api/cameras");
  document.title = `cityedge · ${device_id}`;
  const nav = el("nav");
  const main = el("main");
  const tabs: Record<Tab, HTMLElement> = {
    cameras: el("div", { id: "tab-cameras", class: "tab grid" }),
    editor: el("div", { id: "tab-editor", class: "tab" }),
    charts: el("div", { id: "tab-charts", class: "tab" }),
    health: el("div", { id: "tab-health", class: "tab" }),
  };
  const titles: Record<Tab, string> = { cameras: "Cameras", editor: "Lines and zones", charts: "Charts", health: "Health" };
  for (const t of Object.keys(tabs) as Tab[]) nav.append(el("a", { href: `#${t}`, "data-tab": t }, titles[t]));
  nav.append(el("a", { href: "/metrics", class: "ext" }, "/metrics"));
  document.body.append(el("header", { class: "top" }, el("h1", {}, "cityedge ", el("span", { class: "muted" }, device_id)), nav), main);
  main.append(...Object.values(tabs));

  const live = new Map<string, LiveCamera>();
  const editor = new Editor();
  const charts = new Charts();
  const health = new Health();
  const picker = el("select", { id: "editor-camera" });
  for (const c of cameras) picker.append(el("option", { value: c.id }, c.id));
  picker.onchange = () => void show("editor", picker.value);
  tabs.editor.append(el("div", { class: "toolbar" }, el("label", {}, "Camera ", picker)), editor.root);
  tabs.charts.append(charts.root);
  tabs.health.append(health.root);
  if (cameras.length === 0) tabs.cameras.append(el("p", { class: "muted" }, "No cameras in the config."));

  const show = async (tab: Tab, camera?: string): Promise<void> => {
    for (const [t, e] of Object.entries(tabs)) e.hidden = t !== tab;
    for (const a of nav.querySelectorAll("a[data-tab]")) a.classList.toggle("active", (a as HTMLElement).dataset.tab === tab);
    // Live pictures cost the device an encode per frame: only while the cameras tab is shown.
    if (tab === "cameras") {
      for (const c of cameras) {
        if (live.has(c.id)) continue;
        const lc = new LiveCamera(c);
        lc.onHello = (info) => Object.assign(c, info);
        live.set(c.id, lc);
        tabs.cameras.append(lc.root);
        if (c.model !== null) lc.connect();
      }
    } else {
      for (const lc of live.values()) lc.close();
      for (const lc of live.values()) lc.root.remove();
      live.clear();
    }
    if (tab === "charts") charts.show(cameras);
    else charts.hide();
    if (tab === "health") health.show();
    else health.hide();
    if (tab === "editor") {
      const id = camera ?? picker.value ?? cameras[0]?.id;
      const cam = cameras.find((c) => c.id === id) ?? cameras[0];
      if (cam) {
        picker.value = cam.id;
        await editor.open(cam);
      }
    }
  };
  const route = () => {
    const [tab, camera] = location.hash.slice(1).split("/");
    void show((Object.keys(tabs) as Tab[]).includes(tab as Tab) ? (tab as Tab) : "cameras", camera ? decodeURIComponent(camera) : undefined);
  };
  window.addEventListener("hashchange", route);
  window.addEventListener("beforeunload", (e) => {
    if (editor.dirty) e.preventDefault();
  });
  window.cityedgeConsole = { live, editor, charts, health, show };
  route();
}

main().catch((err: unknown) => {
  document.body.textContent = `The console could not start: ${(err as Error).message}`;
});
