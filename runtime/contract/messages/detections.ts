import { z } from "zod";
import { defineMessage } from "../message.js";
import { count, entityId, isoMs } from "../fields.js";

const unit = () => z.number().min(0).max(1);

const OBJECT = z.strictObject({
  label: z.string().min(1),
  class_id: count("Index of the label in the model's labels"),
  score: unit(),
  box: z.tuple([unit(), unit(), unit(), unit()]).describe("[x_min, y_min, x_max, y_max], normalized 0..1"),
  track_id: z.number().int().min(1).optional().describe("Stable id of the object's track on this camera; absent until the track is confirmed"),
});

export const DETECTIONS = defineMessage({
  name: "detections",
  channel: "detections",
  operation: "publishDetections",
  title: "Detections",
  description:
    "Objects found in one frame of a camera, on <base>/cameras/<camera_id>/detections. Boxes are normalized to the camera's picture (0..1 from the left and top edges), already mapped back through the letterbox. Frames with nothing found are published only when the camera's detection.publish_empty is set; detection.detections_max_rate may skip frames.",
  summary: "Objects found in one frame of a camera.",
  v: 1,
  address: "{topic_prefix}/{device_id}/cameras/{camera_id}/detections",
  body: z.strictObject({
    camera_id: entityId(),
    model: z.string().min(1).describe("Id of the model (config `models`) that found them"),
    frame: count("Frame number from the camera driver since it started"),
    frame_ts: isoMs("When the frame arrived from the camera (ISO 8601 UTC, ms); ts - frame_ts is the processing latency"),
    pts_ms: z.number().int().optional().describe("The stream's presentation timestamp of the frame, when the stream had one"),
    width: z.number().int().min(1).describe("Width of the camera's picture in pixels (multiply box x by it)"),
    height: z.number().int().min(1).describe("Height of the camera's picture in pixels"),
    inference_ms: z.number().min(0).describe("Inference time spent on this frame"),
    objects: z.array(OBJECT),
  }),
  topic: (t, b) => t.detections(b.camera_id),
});

export type DetectionsBody = z.output<typeof DETECTIONS.body>;
export type DetectedObject = z.output<typeof OBJECT>;
