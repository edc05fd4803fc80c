import type { MeterConfig } from "../../runtime/config/sections/meters.js";
import type { MeterDriver } from "./meter.js";
import { meterKind } from "./kinds.js";
import type { DriverDeps } from "./meterKind.js";

export type { DriverDeps } from "./meterKind.js";

/** The driver for one meter's config, made by its kind. */
export function createMeterDriver(cfg: MeterConfig, deps: DriverDeps): MeterDriver {
  const log = deps.log.child({ meter: cfg.id, driver: cfg.driver });
  return meterKind(cfg.driver).create(cfg as never, { ...deps, log });
}
