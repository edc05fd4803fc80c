import { z } from "zod";

/** Identifiers end up in MQTT topics and file names: keep them to a safe alphabet. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const id = (what: string) =>
  z
    .string()
    .regex(ID_PATTERN, `${what} must be 1-64 characters of letters, digits, "_", "." or "-", starting with a letter or digit`)
    .describe(`Unique ${what}; used in MQTT topics`);

export const port = () => z.number().int().min(1).max(65535);

export const durationMs = (min: number, max: number) => z.number().int().min(min).max(max);
