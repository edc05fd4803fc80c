import { z } from "zod";
import { defineMessage } from "../message.js";
import { count, entityId, isoMs } from "../fields.js";

const perLabel = (description: string) => z.record(z.string(), count()).describe(description);

const LINE = z.strictObject({
  line_id: z.string(),
  counts: z
    .record(z.string(), z.strictObject({ in: count(), out: count() }))
    .describe(
      "Per label: tracks that crossed from the left of from→to to its right (in) and back (out). A crossing undone within the interval counts for neither.",
    ),
});

const ZONE = z.strictObject({
  zone_id: z.string(),
  entered: perLabel("Per label: tracks that entered the zone in the interval"),
  present: perLabel("Per label: tracks inside the zone at the interval's end"),
});

export const CONGESTION = ["none", "light", "moderate", "heavy"] as const;

const ROAD = z.strictObject({
  vehicles_present: z.number().min(0).describe("Confirmed vehicles in the picture, averaged over the interval's frames"),
  vehicles_now: count("Confirmed vehicles in the interval's last frame"),
  flow_per_min: z.number().min(0).describe("Vehicles per minute: line crossings when the camera has lines, else new vehicle tracks"),
  mean_speed: z.number().min(0).describe("Mean vehicle speed in picture units (fractions of width/height) per second"),
  congestion: z.enum(CONGESTION).describe("Coarse label: many vehicles that barely move is congestion"),
});

export const COUNTS = defineMessage({
  name: "counts",
  channel: "counts",
  operation: "publishCounts",
  title: "Counts",
  description:
    "Counts of one camera for one interval (detection.counts_interval_s; a shorter last interval at a stop), on <base>/cameras/<camera_id>/counts: crossings per label per counting line in each direction, zone entries and occupancy, and the road-condition estimate.",
  summary: "Counts per class per counting line (and zone occupancy) for one interval.",
  v: 1,
  address: "{topic_prefix}/{device_id}/cameras/{camera_id}/counts",
  body: z.strictObject({
    camera_id: entityId(),
    interval_start: isoMs(),
    interval_end: isoMs(),
    frames: count("Frames processed in the interval"),
    lines: z.array(LINE),
    zones: z.array(ZONE),
    road: ROAD,
  }),
  topic: (t, b) => t.counts(b.camera_id),
});

export type CountsBody = z.output<typeof COUNTS.body>;
export type RoadCondition = z.output<typeof ROAD>;
