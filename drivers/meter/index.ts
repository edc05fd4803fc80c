/**
 * Meters: one interface ({@link MeterDriver}), one file per kind of source, and the part that
 * runs them ({@link MetersPart}: readings to MQTT through the outbox and into history).
 */
export type { MeterDriver, MeterValue, Quality, Reading, ReadingListener } from "./meter.js";
export { MetersPart, readingPayload, type MetersPartOptions } from "./metersPart.js";
export { PRESETS, type PresetName, type PresetRegister } from "./presets.js";
export { decodeRegisters, encodeRegisters, planBlocks } from "./registers.js";
export { RtuLines } from "./rtuLine.js";
export { createMeterDriver, type DriverDeps } from "./createDriver.js";
export { ModbusRtuMeter } from "./modbusRtu.js";
export { ModbusTcpMeter } from "./modbusTcp.js";
export { MqttInMeter } from "./mqttIn.js";
export { ReplayMeter } from "./replay.js";
export { SimulatedMeter, loadShape } from "./simulated.js";
