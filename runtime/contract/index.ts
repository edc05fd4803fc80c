/**
 * The MQTT contract in one place: every message the daemon publishes (body schema, version,
 * topic, typed publish), the command requests it accepts, and the envelope. The JSON Schemas in
 * `schemas/` and `asyncapi.yaml` are generated from these (`cityedge contract --write`).
 */
import { COUNTS } from "./messages/counts.js";
import { DETECTIONS } from "./messages/detections.js";
import { FORECASTS } from "./messages/forecasts.js";
import { HEALTH } from "./messages/health.js";
import { READINGS } from "./messages/readings.js";
import { STATUS } from "./messages/status.js";
import { COMMAND_RESPONSE } from "./messages/commandResponse.js";

export { ENVELOPE_FIELDS, ENVELOPE_KEYS, ENVELOPE_SCHEMA, ISO_MS_PATTERN, type EnvelopeKey } from "./fields.js";
export { defineMessage, type BodyOf, type BodySchema, type MessageSpec } from "./message.js";
export { COUNTS, CONGESTION, type CountsBody, type RoadCondition } from "./messages/counts.js";
export { DETECTIONS, type DetectedObject, type DetectionsBody } from "./messages/detections.js";
export { AGGREGATES, FORECASTS, type ForecastBody } from "./messages/forecasts.js";
export { HEALTH, PART_STATES, type HealthBody } from "./messages/health.js";
export {
  READINGS,
  READING_QUALITIES,
  VALUE_NAME_PATTERN,
  VALUE_QUALITIES,
  type MeterValueBody,
  type ReadingsBody,
  type ValueQuality,
} from "./messages/readings.js";
export { STATUS, STATUS_STATES, statusMessage, type StatusBody, type StatusState } from "./messages/status.js";
export { COMMAND_ERROR_CODES, COMMAND_RESPONSE, type CommandErrorCode, type CommandResponseBody } from "./messages/commandResponse.js";
export {
  COMMAND,
  COMMAND_PARAMS,
  COMMAND_REQUEST,
  MAX_REQUEST_ID,
  SENDER_ENVELOPE_KEYS,
  commandRequestSchema,
  type CommandParams,
} from "./messages/commands.js";

/** Every message the daemon publishes, in the order the AsyncAPI document lists them. */
export const MESSAGES = [STATUS, HEALTH, DETECTIONS, COUNTS, READINGS, FORECASTS, COMMAND_RESPONSE] as const;

export type ContractMessage = (typeof MESSAGES)[number];

/** The messages that go through the outbox: all but status, which the MQTT publisher sends itself. */
export const QUEUED_MESSAGES = [HEALTH, DETECTIONS, COUNTS, READINGS, FORECASTS, COMMAND_RESPONSE] as const;
export type QueuedMessage = (typeof QUEUED_MESSAGES)[number];
export type MessageName = ContractMessage["name"];
