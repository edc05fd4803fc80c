import path from "node:path";
import type { MeterConfig } from "../../runtime/config/sections/meters.js";
import type { Logger } from "../../runtime/log/logger.js";
import type { MeterDriver } from "./meter.js";
import { ModbusRtuMeter } from "./modbusRtu.js";
import { ModbusTcpMeter } from "./modbusTcp.js";
import { MqttInMeter } from "./mqttIn.js";
import { ReplayMeter } from "./replay.js";
import type { RtuLines } from "./rtuLine.js";
import { SimulatedMeter } from "./simulated.js";

export interface DriverDeps {
  log: Logger;
  /** Directory relative file paths (replay CSVs) are resolved against. */
  baseDir: string;
  /** Serial lines shared by the RTU meters of one run. */
  rtuLines: RtuLines;
}

/** The driver for one meter's config. */
export function createMeterDriver(cfg: MeterConfig, deps: DriverDeps): MeterDriver {
  const log = deps.log.child({ meter: cfg.id, driver: cfg.driver });
  switch (cfg.driver) {
    case "modbus-tcp":
      return new ModbusTcpMeter(cfg, log);
    case "modbus-rtu":
      return new ModbusRtuMeter(cfg, deps.rtuLines.get(cfg), log);
    case "mqtt":
      return new MqttInMeter(cfg, log);
    case "replay":
      return new ReplayMeter(cfg, path.resolve(deps.baseDir, cfg.file), log);
    case "simulated":
      return new SimulatedMeter(cfg, log);
  }
}
