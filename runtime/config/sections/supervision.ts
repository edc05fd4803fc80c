import { z } from "zod";
import { durationMs } from "./common.js";

export const SUPERVISION_SCHEMA = z
  .strictObject({
    initial_ms: durationMs(50, 60_000).default(1000).describe("First delay before a part that failed is started again"),
    max_ms: durationMs(100, 3_600_000).default(60_000).describe("Restart delays double (with ±20% jitter) up to this cap"),
    reset_after_ms: durationMs(1000, 86_400_000)
      .default(60_000)
      .describe("A part that ran this long before failing counts as recovered: delays start from initial_ms again"),
    max_restarts: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(5)
      .describe("More restarts than this within window_ms and the part is reported failed (it is still retried, every max_ms)"),
    window_ms: durationMs(1000, 86_400_000).default(600_000).describe("The window max_restarts counts in"),
  })
  .describe(
    "How the daemon restarts a part (camera, detector, outbox, meters …) that failed to start or stopped working; applied in place on reload",
  );

export type SupervisionConfig = z.output<typeof SUPERVISION_SCHEMA>;
