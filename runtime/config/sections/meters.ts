import { z } from "zod";
import { id } from "./common.js";

export const METER_SCHEMA = z.strictObject({
  id: id("meter id"),
  driver: z.enum(["modbus-tcp", "modbus-rtu", "mqtt", "replay", "simulated"]).describe("How readings are obtained"),
  enabled: z.boolean().default(true).describe("Set false to keep a meter configured but not polled"),
  interval_ms: z.number().int().min(100).max(86_400_000).default(1000).describe("Poll interval"),
});

export const METERS_SCHEMA = z.array(METER_SCHEMA).default([]).describe("Utility meters wired to this device");
