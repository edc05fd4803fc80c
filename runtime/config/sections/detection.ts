import { z } from "zod";
import { id } from "./common.js";

/** A point in the camera's picture, normalized: 0..1 from the left / top edge. */
const POINT = z
  .tuple([z.number().min(0).max(1), z.number().min(0).max(1)])
  .describe("[x, y] normalized to the camera picture: 0..1 from the left and top edges");

export const COUNT_LINE_SCHEMA = z
  .strictObject({
    id: id("line id"),
    from: POINT.describe("Start of the line, [x, y] normalized 0..1"),
    to: POINT.describe("End of the line, [x, y] normalized 0..1"),
    classes: z.array(z.string().min(1)).min(1).optional().describe("Labels counted on this line; default: the camera's classes"),
  })
  .describe('A counting line: a track crossing it counts as "in" when it goes from the left of from→to to its right, "out" the other way');

export const ZONE_SCHEMA = z
  .strictObject({
    id: id("zone id"),
    polygon: z.array(POINT).min(3).max(64).describe("The zone's corners, [[x, y], …] normalized 0..1, at least 3"),
    classes: z.array(z.string().min(1)).min(1).optional().describe("Labels counted in this zone; default: the camera's classes"),
  })
  .describe("A zone: counts how many tracks entered it per interval and how many are inside at its end");

export const SNAPSHOT_SCHEMA = z
  .strictObject({
    enabled: z.boolean().default(false).describe("Keep JPEG snapshots with the boxes drawn"),
    interval_s: z.number().min(1).max(86_400).default(60).describe("Seconds between snapshots of one camera"),
    dir: z
      .string()
      .min(1)
      .optional()
      .describe("Where snapshots go; default <data_dir>/snapshots/<camera_id> (relative paths are from the config file)"),
    max_bytes: z
      .number()
      .int()
      .min(65_536)
      .max(1e12)
      .default(64 * 1024 * 1024)
      .describe("Size quota of the camera's snapshot folder; the oldest snapshots are deleted past it"),
    quality: z.number().int().min(10).max(100).default(80).describe("JPEG quality"),
  })
  .describe("JPEG snapshots with the detections drawn, kept locally under a size quota");

export const TRACKER_SCHEMA = z
  .strictObject({
    iou_match: z.number().min(0.05).max(0.95).default(0.3).describe("Least IoU between a track's box and a detection for them to match"),
    max_missed: z.number().int().min(0).max(300).default(15).describe("Frames a track survives unseen (occlusion) before it ends"),
    min_hits: z.number().int().min(1).max(30).default(2).describe("Frames a track must be seen before it is counted and published with an id"),
  })
  .describe("The IoU/ByteTrack-style multi-object tracker");

export const MOTION_SCHEMA = z
  .strictObject({
    enabled: z.boolean().default(false).describe("Skip inference on frames where nothing moves"),
    block: z.number().int().min(2).max(64).default(8).describe("Side in pixels (of the model's input) of the blocks whose mean luma is compared"),
    threshold: z
      .number()
      .min(1)
      .max(255)
      .default(10)
      .describe("Grey levels a block's mean luma must change by, from one frame to the next, to count as moving"),
    start_area: z.number().min(0).max(1).default(0.002).describe("Share of the blocks that must move for motion to start (and inference to run)"),
    stop_area: z
      .number()
      .min(0)
      .max(1)
      .default(0.001)
      .describe("While moving, motion goes on as long as this share of the blocks moves (hysteresis: below start_area)"),
    hold_s: z.number().min(0).max(600).default(2).describe("Seconds inference goes on after motion stopped"),
    min_interval_s: z
      .number()
      .min(0.1)
      .max(3600)
      .default(5)
      .describe("Longest time without inference while nothing moves (the least inference rate)"),
  })
  .refine((m) => m.stop_area <= m.start_area, { message: "stop_area must not exceed start_area", path: ["stop_area"] })
  .describe("Motion gating: inference only when something in the picture moves, and at least every min_interval_s");

export type MotionConfig = z.output<typeof MOTION_SCHEMA>;

export const DETECTION_SCHEMA = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Run detection on this camera (needs `model`)"),
    classes: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Labels to keep, e.g. ["person", "car", "bus", "truck"]; default: every label of the model'),
    score_threshold: z.number().min(0.01).max(1).optional().describe("Least score a detection needs; default: the model manifest's thresholds.score"),
    nms_iou: z
      .number()
      .min(0.05)
      .max(1)
      .optional()
      .describe("IoU above which a box of the same class is suppressed; default: the manifest's thresholds.nms_iou"),
    class_merge: z
      .strictObject({
        groups: z
          .array(z.array(z.string().min(1)).min(2))
          .min(1)
          .describe('Labels that are one object when their boxes overlap, e.g. [["car", "truck", "bus"]]: the best box of a group is kept'),
        iou: z.number().min(0.05).max(1).default(0.7).describe("IoU above which boxes of one group are the same object"),
      })
      .optional()
      .describe("Cross-class merge after NMS: one object seen as car and as truck is kept once, as the class with the best score. Default: off"),
    lines: z.array(COUNT_LINE_SCHEMA).max(32).default([]).describe("Counting lines"),
    zones: z.array(ZONE_SCHEMA).max(32).default([]).describe("Counting zones (polygons)"),
    counts_interval_s: z.number().int().min(1).max(86_400).default(60).describe("Seconds per counts message on cameras/<id>/counts"),
    detections_max_rate: z
      .number()
      .min(0)
      .max(60)
      .default(0)
      .describe("Most detections messages per second on cameras/<id>/detections; 0 publishes every processed frame"),
    publish_empty: z.boolean().default(false).describe("Also publish detections messages for frames with nothing found"),
    vehicle_classes: z
      .array(z.string().min(1))
      .min(1)
      .default(["car", "bus", "truck", "motorcycle", "bicycle"])
      .describe("Labels that count as vehicles for the road-condition estimate"),
    tracker: TRACKER_SCHEMA.prefault({}),
    motion: MOTION_SCHEMA.prefault({}),
    snapshots: SNAPSHOT_SCHEMA.prefault({}),
  })
  .superRefine((d, ctx) => {
    // Counts are keyed by id: two lines (or zones) of one camera with one id would add up as one.
    for (const key of ["lines", "zones"] as const) {
      const seen = new Map<string, number>();
      d[key].forEach((item, i) => {
        const first = seen.get(item.id);
        if (first !== undefined) ctx.addIssue({ code: "custom", path: [key, i, "id"], message: `duplicate id "${item.id}" (also ${key}[${first}])` });
        else seen.set(item.id, i);
      });
    }
  })
  .describe("What the camera's detection pipeline keeps, counts and publishes");

export type DetectionConfig = z.output<typeof DETECTION_SCHEMA>;
