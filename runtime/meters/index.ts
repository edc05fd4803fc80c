/**
 * The meter pipeline: {@link MetersPart} runs the drivers of `drivers/meter` and emits their
 * readings on the bus (to MQTT through the outbox, and into history through the recorder).
 */
import type { Part, PartContext } from "../part.js";
import { MetersPart } from "./metersPart.js";

export { MetersPart, readingPayload, type MetersPartOptions } from "./metersPart.js";

/** The meters part when the config has meters (after the history parts in start order). */
export function buildMeters(ctx: PartContext): Part[] {
  const cfg = ctx.config;
  if (cfg.meters.length === 0) return [];
  const meters = new MetersPart({
    meters: cfg.meters,
    bus: ctx.bus,
    baseDir: ctx.loaded.baseDir,
    log: ctx.log.child({ module: "meters" }),
    metrics: ctx.metrics,
  });
  return [ctx.part(meters, { slice: cfg.meters })];
}
