import { buildCommandParts, cameraControlOf, commandSourceOf, swapTargetOf } from "./commands/index.js";
import { buildCameras, buildLiveView } from "../drivers/camera/index.js";
import { buildDetection, detectionFrameSpec } from "./detect/index.js";
import type { PartContext } from "./part.js";
import { buildHealthParts } from "./http/index.js";
import { buildMeterParts } from "./forecast/index.js";
import { buildMqtt } from "./mqtt/index.js";
import type { Part } from "./part.js";

/**
 * The composition root's wiring: which parts a config asks for, in start order (stopped in
 * reverse). Each feature adds its parts here and nowhere else.
 */
export function buildParts(ctx: PartContext): Part[] {
  // MQTT first: every later part publishes to `sink` (the durable outbox), and stopping in
  // reverse order lets the pipelines' last messages reach the outbox before it closes.
  // `publisher.subscribe(filter, handler)` is how a part receives MQTT commands.
  const { sink, publisher, parts: mqttParts } = buildMqtt(ctx);
  const parts: Part[] = [...mqttParts];
  void sink;
  void publisher;
  // Cameras: one ffmpeg-driven part per enabled camera, keyed by id; detection takes
  // frames from `cameras.get(id).slot`. The live view (when enabled) serves the same cameras.
  const cameras = buildCameras(ctx, detectionFrameSpec(ctx));
  parts.push(...cameras.values());
  // Detection: one detector per model, sharing its session among the model's cameras;
  // cameras deliver frames at that model's input size (detectionFrameSpec).
  // Meters and forecasts are built here so detection's counts can also feed history
  // (cameraSink = the outbox, plus counts of the cameras a forecast names); started below.
  const meters = buildMeterParts(ctx, sink);
  const detectors = buildDetection(ctx, meters.cameraSink, cameras);
  parts.push(...detectors);
  // Meters and forecasts: history store, forecast scheduler, then the meters.
  parts.push(...meters.parts);
  const liveView = buildLiveView(ctx);
  if (liveView) parts.push(liveView);
  // Operating the device: /healthz, /metrics, <base>/health, and <base>/cmd/<name>.
  // Last, so that /healthz and commands come up once the parts they report on and act on exist.
  parts.push(...buildHealthParts(ctx, sink));
  parts.push(
    ...buildCommandParts(ctx, { sink, source: commandSourceOf(publisher), models: swapTargetOf(detectors), cameras: cameraControlOf(cameras) }),
  );
  return parts;
}
