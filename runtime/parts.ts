import { buildCameras, buildLiveView, Camera } from "../drivers/camera/index.js";
import { buildCommandParts, cameraControlOf, commandSourceOf, swapTargetOf } from "./commands/index.js";
import { buildConsole, LiveHub } from "./console/index.js";
import { buildDetection, detectionFrameSpec, DetectorPart } from "./detect/index.js";
import { fanOut } from "./detect/recentObjects.js";
import { buildHistoryParts } from "./forecast/index.js";
import { HistoryStore } from "./history/historyStore.js";
import { buildHealthParts } from "./http/index.js";
import { buildMeters } from "./meters/index.js";
import { buildMqtt } from "./mqtt/index.js";
import type { Part, PartContext } from "./part.js";

/**
 * The composition root's wiring: which parts a config asks for, in start order (stopped in
 * reverse), and what each depends on. Each part is declared with `ctx.part(made, { slice, deps })`:
 * on a reload a part whose slice and dependencies are unchanged keeps running. Each feature adds
 * its parts here and nowhere else.
 */
export function buildParts(ctx: PartContext): Part[] {
  // MQTT first: the outbox publishes every message event of `ctx.bus`, and stopping in reverse
  // order lets the pipelines' last messages reach it before it closes. Producers hold the bus,
  // not the outbox, so a new outbox does not restart them.
  // `publisher.subscribe(filter, handler)` is how a part receives MQTT commands.
  const { publisher, parts: mqttParts } = buildMqtt(ctx);
  const parts: Part[] = [...mqttParts];
  // History and forecasts next, for the same reason: the recorder keeps readings and counts
  // from the bus, so it runs before the meters and cameras start and after they stop.
  parts.push(...buildHistoryParts(ctx));
  // Cameras: one ffmpeg-driven part per enabled camera, keyed by id, delivering frames at the
  // input size of the model it runs (detectionFrameSpec). Its slice is its config without the
  // detection settings, which belong to its pipeline.
  const frameSpec = detectionFrameSpec(ctx);
  const cameras = new Map<string, Camera>();
  for (const [id, made] of buildCameras(ctx, frameSpec)) {
    const cfg = ctx.config.cameras.find((c) => c.id === id)!;
    const { detection: _detection, model: _model, ...own } = cfg;
    cameras.set(id, ctx.part(made, { slice: { camera: own, frame: frameSpec(cfg) ?? null, ffmpeg: ctx.config.ffmpeg_path ?? null } }));
  }
  parts.push(...cameras.values());
  // What detection finds, watched: the hub keeps each camera's last boxes and what its pipeline
  // runs with (pictures at the camera's resolution, snapshots, the console's live view). It
  // reads no config, so it lives as long as the daemon.
  const hub = ctx.part(new LiveHub({ bus: ctx.bus, log: ctx.log.child({ module: "console" }), metrics: ctx.metrics }), { slice: {} });
  parts.push(hub);
  const detectLog = ctx.log.child({ module: "detect" });
  const observer = fanOut([hub], (err) => detectLog.warn({ err }, "a detection observer failed"));
  // Detection: one detector per model, sharing its sessions among the model's cameras, then one
  // pipeline per camera joining it.
  const detection = buildDetection(ctx, cameras, { observer, deps: [hub] });
  parts.push(...detection.detectors, ...detection.pipelines);
  parts.push(...buildMeters(ctx));
  const liveView = buildLiveView(ctx);
  if (liveView) {
    const watched = ctx.config.cameras.filter((c) => c.enabled).map(({ detection: _d, model: _m, ...own }) => own);
    parts.push(ctx.part(liveView, { slice: { live_view: ctx.config.live_view, cameras: watched, ffmpeg: ctx.config.ffmpeg_path ?? null } }));
  }
  // Operating the device: /healthz, /metrics, the web console, <base>/health, and <base>/cmd/<name>.
  // Last, so that /healthz and commands come up once the parts they report on and act on exist.
  // The console finds cameras and history when a request comes, so a reload that rebuilds them
  // keeps the endpoint (and its WebSockets) running.
  const cameraParts = () => ctx.parts.ofKind("camera").filter((p) => p instanceof Camera);
  const web = buildConsole(ctx, {
    hub,
    cameras: cameraParts,
    history: () => ctx.parts.ofKind("history").find((p) => p instanceof HistoryStore),
  });
  parts.push(...buildHealthParts(ctx, web));
  // Commands find the cameras and detectors when they act, so a reload that rebuilds one of
  // those does not rebuild the commands.
  parts.push(
    ...buildCommandParts(ctx, {
      source: commandSourceOf(publisher),
      models: swapTargetOf(() => ctx.parts.ofKind("detector").filter((p) => p instanceof DetectorPart)),
      cameras: cameraControlOf(cameraParts, (name) => ctx.parts.restart(name), hub),
      holds: [publisher, hub],
    }),
  );
  return parts;
}
