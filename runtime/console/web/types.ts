/** What the daemon's console API answers (runtime/console). */
export type Point = [number, number];

export interface LineSpec {
  id: string;
  from: Point;
  to: Point;
  classes?: string[];
}

export interface ZoneSpec {
  id: string;
  polygon: Point[];
  classes?: string[];
}

export interface CameraInfo {
  id: string;
  model: string | null;
  labels: string[];
  counts_interval_s: number;
  lines: LineSpec[];
  zones: ZoneSpec[];
  /** Whether the camera's pipeline runs (null: the camera runs no detection). */
  pipeline?: "running" | "stopped" | null;
  health?: Record<string, unknown> | null;
  still?: { width: number; height: number } | null;
}

/** What the daemon did with a saved change (runtime/supervise/reload.ts). */
export interface ReloadResult {
  outcome: "applied" | "rejected" | "rolled_back" | "planned";
  restarted?: string[];
  problems?: string[];
}

export interface LiveObject {
  label: string;
  class_id: number;
  score: number;
  box: [number, number, number, number];
  track_id?: number;
}

export interface Tally {
  line_id: string;
  counts: Record<string, { in: number; out: number }>;
}

export interface FrameHeader {
  type: "frame";
  camera_id: string;
  frame: number;
  frame_ts: number;
  pts_ms?: number;
  width: number;
  height: number;
  src_width: number;
  src_height: number;
  objects: LiveObject[];
  running: Tally[];
}

export interface CountsBody {
  interval_start: string;
  interval_end: string;
  frames: number;
  lines: Tally[];
}

export interface GeometryView {
  etag: string;
  camera: string;
  file: string;
  labels: string[];
  lines: LineSpec[];
  zones: ZoneSpec[];
}
