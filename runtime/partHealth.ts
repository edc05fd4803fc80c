/**
 * Health by kind of part: what each kind reports (its `health()` type), and the report the daemon
 * gives for each running part, which health summaries group by `kind`, never by name.
 */
import type { Camera, CameraHealth } from "../drivers/camera/camera.js";
import type { LiveView, LiveViewHealth } from "../drivers/camera/liveView.js";
import type { BrokerHealth, EmbeddedBroker } from "./broker/embeddedBroker.js";
import type { CommandDispatcher, CommandsHealth } from "./commands/dispatcher.js";
import type { ConsoleHealth, LiveHub } from "./console/liveHub.js";
import type { DetectorHealth, DetectorPart } from "./detect/detectorPart.js";
import type { PipelineHealth, PipelinePart } from "./detect/pipelinePart.js";
import type { ForecastHealth, ForecastScheduler } from "./forecast/scheduler.js";
import type { HistoryRecorder, HistoryRecorderHealth } from "./history/historyRecorder.js";
import type { HistoryHealth, HistoryStore } from "./history/historyStore.js";
import type { HealthPublisher, HealthPublisherHealth } from "./http/healthPublisher.js";
import type { HttpHealth, HttpServer } from "./http/server.js";
import type { MetersHealth, MetersPart } from "./meters/metersPart.js";
import type { MqttHealth, MqttPublisher } from "./mqtt/publisher.js";
import type { Outbox, OutboxHealth } from "./outbox/outbox.js";
import type { PartHealth, PartKind } from "./part.js";

/** What each kind of part says about itself. */
export interface PartHealthByKind {
  broker: BrokerHealth;
  outbox: OutboxHealth;
  mqtt: MqttHealth;
  camera: CameraHealth;
  detector: DetectorHealth;
  pipeline: PipelineHealth;
  history: HistoryHealth;
  "history-recorder": HistoryRecorderHealth;
  forecast: ForecastHealth;
  meters: MetersHealth;
  "live-view": LiveViewHealth;
  http: HttpHealth;
  "health-publisher": HealthPublisherHealth;
  process: PartHealth;
  commands: CommandsHealth;
  console: ConsoleHealth;
  other: PartHealth;
}

/** One running part as the daemon reports it: its name, kind, the id it is for, and its health of that kind. */
export type PartReport = {
  [K in PartKind]: { name: string; kind: K; id?: string; health: PartHealthByKind[K] };
}[PartKind];

/** Each part class is of its kind and reports that kind's health (this fails to compile otherwise). */
type OfKind<K extends PartKind, P extends { readonly kind: K; health(): PartHealthByKind[K] }> = P;
export type PartClasses = [
  OfKind<"broker", EmbeddedBroker>,
  OfKind<"outbox", Outbox>,
  OfKind<"mqtt", MqttPublisher>,
  OfKind<"camera", Camera>,
  OfKind<"detector", DetectorPart>,
  OfKind<"pipeline", PipelinePart>,
  OfKind<"history", HistoryStore>,
  OfKind<"history-recorder", HistoryRecorder>,
  OfKind<"forecast", ForecastScheduler>,
  OfKind<"meters", MetersPart>,
  OfKind<"live-view", LiveView>,
  OfKind<"http", HttpServer>,
  OfKind<"health-publisher", HealthPublisher>,
  OfKind<"commands", CommandDispatcher>,
  OfKind<"console", LiveHub>,
];
