import { writeFileSync } from "node:fs";
import path from "node:path";
import YAML from "yaml";

/**
 * Writes a daemon config for MQTT tests into `dir` (no cameras, meters or HTTP) and returns its
 * path. `over` is merged into the top level, its `mqtt` and `outbox` into those sections.
 */
export function writeMqttConfig(
  dir: string,
  url: string,
  over: { device_id?: string; mqtt?: Record<string, unknown>; outbox?: Record<string, unknown>; [k: string]: unknown } = {},
): string {
  const { mqtt, outbox, ...top } = over;
  const cfg = {
    device_id: "dev-1",
    topic_prefix: "cityedge",
    log_level: "info",
    data_dir: path.join(dir, "data"),
    mqtt: { url, keepalive_s: 5, reconnect_min_ms: 100, reconnect_max_ms: 1000, ...mqtt },
    outbox: { synchronous: "normal", ...outbox },
    broker: { enabled: false },
    http: { enabled: false, health_publish_ms: 0 },
    cameras: [],
    models: [],
    meters: [],
    forecasts: [],
    ...top,
  };
  const file = path.join(dir, "cityedge.yaml");
  writeFileSync(file, YAML.stringify(cfg));
  return file;
}
