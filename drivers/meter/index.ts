/**
 * Meters: one interface ({@link MeterDriver}) and one file per kind of source. The part that
 * runs them is in runtime/meters.
 */
export type { MeterDriver, MeterHealth, MeterValue, Quality, Reading, ReadingListener } from "./meter.js";
export { PRESETS, type PresetName, type PresetRegister } from "./presets.js";
export { decodeRegisters, encodeRegisters, planBlocks } from "./registers.js";
export { RtuLines } from "./rtuLine.js";
export { createMeterDriver, type DriverDeps } from "./createDriver.js";
export { ModbusRtuMeter } from "./modbusRtu.js";
export { ModbusTcpMeter } from "./modbusTcp.js";
export { MqttInMeter } from "./mqttIn.js";
export { ReplayMeter } from "./replay.js";
export { SimulatedMeter, loadShape } from "./simulated.js";
