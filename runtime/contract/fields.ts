import { z } from "zod";
import { ID_PATTERN } from "../config/sections/common.js";

/** ISO 8601 UTC with milliseconds, the one time format of the contract. */
export const ISO_MS_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export const isoMs = (description?: string) => {
  const s = z.string().regex(ISO_MS_PATTERN, "must be ISO 8601 UTC with milliseconds");
  return description ? s.describe(description) : s;
};

/** A camera, meter, series or device id: the config's id alphabet (they are topic levels). */
export const entityId = (description?: string) => {
  const s = z.string().regex(ID_PATTERN, 'must be 1-64 characters of letters, digits, "_", "." or "-", starting with a letter or digit');
  return description ? s.describe(description) : s;
};

export const count = (description?: string) => {
  const s = z.number().int().min(0);
  return description ? s.describe(description) : s;
};

/**
 * Fields every message the daemon publishes carries, merged into the payload's top level. The
 * outbox (or, for status, the publisher) sets them; a body never does.
 */
export const ENVELOPE_FIELDS = {
  v: z.number().int().min(1).describe("Payload schema version"),
  id: z.string().min(1).max(64).describe("Unique message id (UUID); a re-sent message keeps its id"),
  device_id: entityId("The publishing device"),
  ts: isoMs("When the message was made: ISO 8601 UTC with milliseconds"),
  epoch: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,64}$/)
    .describe(
      "Names the numbering `seq` belongs to; it changes only when the device lost its sequence state (its outbox and its sequence ledger both). Tell a duplicate (same epoch, seq and id) from a numbering that started over (a new epoch) by it",
    ),
  seq: z.number().int().min(1).describe("Per-topic sequence number within the epoch"),
};

export type EnvelopeKey = keyof typeof ENVELOPE_FIELDS;

/** The envelope keys in the order they lead every message. */
export const ENVELOPE_KEYS = Object.keys(ENVELOPE_FIELDS) as EnvelopeKey[];

/** The envelope alone, open to any body: what every message has in common. */
export const ENVELOPE_SCHEMA = z.looseObject(ENVELOPE_FIELDS).meta({
  title: "Envelope",
  description:
    "Fields every message the daemon publishes carries, merged into the payload's top level. Within one `epoch`, `seq` rises by exactly 1 per message on its topic and continues across restarts; a repeated (epoch, seq) is a duplicate and carries the same `id`; a gap is a loss (a full disk, the outbox quota, a damaged outbox file), never a silent one. A new `epoch` means the device lost its sequence state (its outbox and its sequence ledger both): the numbering started over at 1, and what the previous epoch had not yet delivered may be lost.",
});
