import { z } from "zod";
import { defineMessage } from "../message.js";

export const STATUS_STATES = ["online", "offline", "stopped"] as const;

/**
 * Status is a state, not a stream: the MQTT publisher sends it itself (retained, and `offline`
 * as its last will), never through the outbox; see {@link statusMessage}.
 */
export const STATUS = defineMessage({
  name: "status",
  channel: "status",
  operation: "publishStatus",
  title: "Status",
  description:
    "Retained device status. Connection number k (rising across restarts) publishes `online` with seq 2k-1 right after it connects; its last will `offline` and a clean-shutdown `stopped` carry seq 2k. Status is a state, not a stream: it is not queued in the outbox, so a subscriber may see seq jump when a will was never delivered (for example when the broker itself restarted). For `offline`, `ts` is when its connection was made (the will is fixed then), not when the device went away: the broker's delivery time is the moment it was noticed.",
  summary: "Retained device state; `offline` is the last will.",
  v: 1,
  address: "{topic_prefix}/{device_id}/status",
  retain: true,
  body: z.strictObject({
    state: z.enum(STATUS_STATES),
    connection: z.number().int().min(1).describe("The MQTT connection number k that this status belongs to"),
  }),
  topic: (t) => t.status(),
});

export type StatusBody = z.output<typeof STATUS.body>;
export type StatusState = StatusBody["state"];

/** A whole status message, envelope included, as the publisher sends it (it has no outbox to stamp it). */
export function statusMessage(envelope: { id: string; device_id: string; ts: string; epoch: string; seq: number }, body: StatusBody): string {
  return JSON.stringify({ v: STATUS.v, ...envelope, ...body });
}
