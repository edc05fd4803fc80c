import type { Frame } from "../../drivers/camera/frame.js";

/** One detected object. Coordinates are corners (x1, y1) top-left and (x2, y2) bottom-right. */
export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface Detection extends Box {
  class_id: number;
  score: number;
}

/** A detection mapped to the camera picture, normalized 0..1, with its label and track. */
export interface ObjectOut extends Detection {
  label: string;
  track_id?: number;
}

export function area(b: Box): number {
  return Math.max(0, b.x2 - b.x1) * Math.max(0, b.y2 - b.y1);
}

export function iou(a: Box, b: Box): number {
  const w = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  if (w <= 0) return 0;
  const h = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (h <= 0) return 0;
  const inter = w * h;
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** Per counting line: crossings per label in each direction. */
export interface LineTally {
  line_id: string;
  counts: Record<string, { in: number; out: number }>;
}

/** What a camera's detection runs with, as its pipeline starts: what a view of it needs to draw. */
export interface PipelineInfo {
  model: string;
  labels: readonly string[];
  counts_interval_s: number;
  lines: readonly { id: string; from: readonly [number, number]; to: readonly [number, number]; classes?: readonly string[] }[];
  zones: readonly { id: string; polygon: readonly (readonly [number, number])[]; classes?: readonly string[] }[];
}

/**
 * Watches the frames a camera's detection handles (the web console; counts and detections go on
 * the daemon's bus). Called on the detection loop: keep it cheap, and copy a frame's pixels
 * before returning if they are needed later.
 */
export interface DetectionObserver {
  /** A camera's pipeline started (again, after a change to its lines or zones). */
  started?(cameraId: string, info: PipelineInfo): void;
  /** A camera's pipeline stopped. */
  stopped?(cameraId: string): void;
  /** A frame was handled; `running` gives the crossings of the counts interval so far. */
  frame(cameraId: string, frame: Frame, objects: readonly ObjectOut[], running: () => LineTally[]): void;
}
