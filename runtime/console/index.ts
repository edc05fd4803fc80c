/**
 * The web console: the page and its API on the daemon's HTTP endpoint. Live cameras with their
 * detections (a WebSocket per camera), the line and zone editor (saved into the config file and
 * applied by a reload), counts and forecast charts from the history store, pictures at the
 * camera's resolution. The browser code is in `web/`, bundled by `npm run build` into dist/console.
 */
import type { Camera } from "../../drivers/camera/camera.js";
import { ConfigError, formatProblem } from "../config/errors.js";
import { cameraPicture } from "../detect/picture.js";
import type { HistoryStore } from "../history/historyStore.js";
import { sendJson, readJson, HttpError } from "../http/respond.js";
import type { Route, UpgradeRoute } from "../http/server.js";
import type { PartContext } from "../part.js";
import { consoleAssetsDir, assetRoutes } from "./assets.js";
import { countsHistory } from "./charts.js";
import { forecastChart } from "./forecastReader.js";
import { GEOMETRY_EDIT, GeometryFile } from "./geometry.js";
import type { LiveHub } from "./liveHub.js";

export { LiveHub, type CameraInfo } from "./liveHub.js";
export { applyGeometry, GeometryFile, GEOMETRY_EDIT, type GeometryEdit } from "./geometry.js";
export { countsHistory, type CountsHistory } from "./charts.js";
export { forecastChart, type ForecastChart, type IssuedForecast } from "./forecastReader.js";

/**
 * What the console serves, found when a request comes: the HTTP endpoint outlives reloads that
 * rebuild cameras, pipelines or the history store, so nothing of those is held here.
 */
export interface ConsoleDeps {
  /** What detection finds and what each camera's pipeline runs with; it lives as long as the daemon. */
  hub: LiveHub;
  cameras: () => readonly Camera[];
  history: () => HistoryStore | undefined;
}

export interface ConsoleWiring {
  routes: Route[];
  upgrades: UpgradeRoute[];
  /** What of the config the routes read when they are built: the endpoint is rebuilt when it changes. */
  slice: unknown;
}

const CAMERA = "([A-Za-z0-9][A-Za-z0-9_.-]{0,63})";

const num = (v: string | null, fallback: number, min: number, max: number): number => {
  const n = v === null ? fallback : Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new HttpError(400, `must be a number ${min}..${max}, got ${JSON.stringify(v)}`);
  return n;
};
const flag = (v: string | null): boolean => v === "1" || v === "true" || v === "yes";

/** The console's routes and WebSockets for the HTTP endpoint; none when `http.console` is off. */
export function buildConsole(ctx: PartContext, deps: ConsoleDeps): ConsoleWiring {
  const forecasts = ctx.config.forecasts.map((f) => ({ id: f.id, source: f.source }));
  const slice = { console: ctx.config.http.console, forecasts };
  if (!ctx.config.http.enabled || !ctx.config.http.console) return { routes: [], upgrades: [], slice };
  const log = ctx.log.child({ module: "console" });
  const hub = deps.hub;
  const file = new GeometryFile(ctx.loaded.file);
  const camera = (id: string): Camera => {
    const cams = deps.cameras();
    const cam = cams.find((c) => c.id === id);
    if (!cam) throw new HttpError(404, `no camera "${id}" runs in this daemon (cameras: ${cams.map((c) => c.id).join(", ") || "none"})`);
    return cam;
  };
  const history = (): HistoryStore => {
    const h = deps.history();
    if (!h) throw new HttpError(503, "no history store runs in this daemon (it runs with meters, forecasts or a camera that counts)");
    return h;
  };

  const routes: Route[] = [
    ...assetRoutes(consoleAssetsDir()),
    {
      method: "GET",
      path: "/api/cameras",
      handle(_req, res) {
        const list = deps.cameras().map((cam) => {
          const info = hub.cameras.get(cam.id);
          const still = cam.stills.at(-1);
          return {
            id: cam.id,
            model: info?.model ?? null,
            labels: info?.labels ?? [],
            counts_interval_s: info?.counts_interval_s ?? null,
            lines: info?.lines ?? [],
            zones: info?.zones ?? [],
            pipeline: info ? (info.running ? "running" : "stopped") : null,
            health: cam.health(),
            still: still ? { width: still.width, height: still.height } : null,
            viewers: hub.viewers(cam.id),
          };
        });
        sendJson(res, 200, { device_id: ctx.config.device_id, cameras: list });
      },
    },
    {
      method: "GET",
      path: new RegExp(`^/api/cameras/${CAMERA}/snapshot\\.jpg$`),
      async handle(_req, res, [id], url) {
        const cam = camera(id!);
        const boxes = flag(url.searchParams.get("boxes"));
        const lines = url.searchParams.has("lines") ? flag(url.searchParams.get("lines")) : boxes;
        const quality = num(url.searchParams.get("quality"), 85, 10, 100);
        const g = lines ? hub.geometry(id!) : undefined;
        const source = {
          stills: cam.stills,
          // A copy: the frame's buffer goes back to the camera's pool once newer frames arrive.
          latestFrame: () => {
            const f = cam.slot.latest;
            return f && { ...f, data: Buffer.from(f.data) };
          },
        };
        const pic = await cameraPicture(id!, source, hub.recent, { boxes, quality, ...(g ? { geometry: g } : {}) });
        if (!pic) throw new HttpError(503, `camera "${id}" has no picture yet`);
        res
          .writeHead(200, {
            "content-type": "image/jpeg",
            "content-length": pic.jpeg.length,
            "cache-control": "no-store",
            "x-cityedge-frame": String(pic.frame_index),
            "x-cityedge-resolution": pic.resolution,
            "x-cityedge-captured-at": pic.captured_at,
            ...(pic.boxes_frame_index !== undefined ? { "x-cityedge-boxes-frame": String(pic.boxes_frame_index) } : {}),
          })
          .end(pic.jpeg);
      },
    },
    {
      method: "GET",
      path: new RegExp(`^/api/cameras/${CAMERA}/geometry$`),
      handle(_req, res, [id]) {
        try {
          const view = file.read(id!);
          if (!view) throw new HttpError(404, `no camera "${id}" in ${ctx.loaded.file}`);
          sendJson(res, 200, { ...view, labels: hub.cameras.get(id!)?.labels ?? [], file: ctx.loaded.file });
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          sendJson(res, 422, { message: "the config file is not valid now; fix it first", problems: err.problems.map(formatProblem) });
        }
      },
    },
    {
      method: "PUT",
      path: new RegExp(`^/api/cameras/${CAMERA}/geometry$`),
      async handle(req, res, [id]) {
        const parsed = GEOMETRY_EDIT.safeParse(await readJson(req));
        if (!parsed.success) {
          sendJson(res, 400, {
            message: "malformed edit",
            problems: parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`),
          });
          return;
        }
        let saved;
        try {
          saved = await file.save(id!, parsed.data);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          throw new HttpError(500, `cannot write ${ctx.loaded.file}: ${code ?? (err as Error).message}`);
        }
        if (!saved.ok) {
          sendJson(res, saved.status, { message: saved.message, problems: saved.problems });
          return;
        }
        log.info(
          { camera: id, file: ctx.loaded.file, lines: parsed.data.lines.length, zones: parsed.data.zones.length },
          "console: lines and zones saved; reloading",
        );
        // A reload by difference restarts only this camera's pipeline; the endpoint answering keeps running.
        const result = await ctx.reload();
        log.info(
          { camera: id, outcome: result.outcome, ...("restarted" in result ? { restarted: result.restarted } : {}) },
          `console: reload ${result.outcome}`,
        );
        if (result.outcome === "applied") {
          sendJson(res, 200, { saved: true, etag: saved.etag, reload: result });
          return;
        }
        // Saved and valid, but the daemon could not apply it (a part failed to start): it runs on as before.
        const problems =
          result.outcome === "rejected" ? result.problems : result.outcome === "rolled_back" ? result.failed.map((f) => `${f.part}: ${f.error}`) : [];
        sendJson(res, 409, {
          message: `saved, but the reload was ${result.outcome.replace("_", " ")}: the daemon runs on the previous config`,
          problems,
          saved: true,
          reload: result,
        });
      },
    },
    {
      method: "GET",
      path: new RegExp(`^/api/cameras/${CAMERA}/counts$`),
      handle(_req, res, [id], url) {
        const store = history();
        const minutes = num(url.searchParams.get("minutes"), 60, 1, 60 * 24 * 60);
        const interval = (hub.cameras.get(id!)?.counts_interval_s ?? 60) * 1000;
        const to = Date.now();
        sendJson(res, 200, countsHistory(store, id!, to - minutes * 60_000, to + 1, store.rawRetentionMs, interval));
      },
    },
    {
      method: "GET",
      path: "/api/forecasts",
      handle(_req, res) {
        sendJson(res, 200, { series: forecasts });
      },
    },
    {
      method: "GET",
      path: /^\/api\/forecasts\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})$/,
      handle(_req, res, [id], url) {
        const series = forecasts.find((f) => f.id === id);
        if (!series) throw new HttpError(404, `no forecast "${id}" in the config (forecasts: ${forecasts.map((f) => f.id).join(", ") || "none"})`);
        sendJson(res, 200, forecastChart(history(), series, num(url.searchParams.get("hours"), 48, 1, 24 * 366)));
      },
    },
  ];
  const upgrades: UpgradeRoute[] = [
    {
      path: new RegExp(`^/api/cameras/${CAMERA}/live$`),
      handle: (req, socket, head, [id]) => hub.upgrade(req, socket, head, id!),
    },
  ];
  return { routes, upgrades, slice };
}
