/**
 * Built-in register maps. Addresses are zero-based protocol addresses (Eastron documents
 * input register 30001 as address 0). Eastron meters hold IEEE-754 float32 values, high word
 * first, in input registers (FC4).
 */
export interface PresetRegister {
  name: string;
  function: "holding" | "input";
  address: number;
  type: "int16" | "uint16" | "int32" | "uint32" | "float32" | "float64";
  scale: number;
  unit: string;
}

const f32 = (name: string, address: number, unit: string): PresetRegister => ({ name, function: "input", address, type: "float32", scale: 1, unit });

/** Eastron SDM630: three-phase, four-wire. */
const SDM630: PresetRegister[] = [
  f32("voltage_l1_v", 0x0000, "V"),
  f32("voltage_l2_v", 0x0002, "V"),
  f32("voltage_l3_v", 0x0004, "V"),
  f32("current_l1_a", 0x0006, "A"),
  f32("current_l2_a", 0x0008, "A"),
  f32("current_l3_a", 0x000a, "A"),
  f32("power_l1_w", 0x000c, "W"),
  f32("power_l2_w", 0x000e, "W"),
  f32("power_l3_w", 0x0010, "W"),
  f32("power_w", 0x0034, "W"),
  f32("power_factor", 0x003e, ""),
  f32("frequency_hz", 0x0046, "Hz"),
  f32("import_energy_kwh", 0x0048, "kWh"),
  f32("export_energy_kwh", 0x004a, "kWh"),
  f32("total_energy_kwh", 0x0156, "kWh"),
];

/** Eastron SDM120: single-phase. */
const SDM120: PresetRegister[] = [
  f32("voltage_v", 0x0000, "V"),
  f32("current_a", 0x0006, "A"),
  f32("power_w", 0x000c, "W"),
  f32("power_factor", 0x001e, ""),
  f32("frequency_hz", 0x0046, "Hz"),
  f32("import_energy_kwh", 0x0048, "kWh"),
  f32("export_energy_kwh", 0x004a, "kWh"),
  f32("total_energy_kwh", 0x0156, "kWh"),
];

/** A common integer layout in holding registers (many cabinet meters and PLC gateways use one like it). */
const GENERIC: PresetRegister[] = [
  { name: "voltage_v", function: "holding", address: 0, type: "uint16", scale: 0.1, unit: "V" },
  { name: "current_a", function: "holding", address: 1, type: "uint16", scale: 0.01, unit: "A" },
  { name: "power_w", function: "holding", address: 2, type: "int32", scale: 1, unit: "W" },
  { name: "energy_kwh", function: "holding", address: 4, type: "uint32", scale: 0.01, unit: "kWh" },
  { name: "frequency_hz", function: "holding", address: 6, type: "uint16", scale: 0.01, unit: "Hz" },
];

export const PRESETS = { sdm630: SDM630, sdm120: SDM120, generic: GENERIC, none: [] as PresetRegister[] } as const;

export type PresetName = keyof typeof PRESETS;
