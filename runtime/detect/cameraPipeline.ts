import type { Frame } from "../../drivers/camera/frame.js";
import type { DetectionConfig } from "../config/sections/detection.js";
import type { Logger } from "../log/logger.js";
import type { CountsBody } from "../contract/index.js";
import type { DaemonBus } from "../events/events.js";
import { Counter, type LineCounts, type LineSpec, type ZoneSpec } from "./counting.js";
import { decode, decoderOf, type RoleTensors } from "./decoders/index.js";
import type { DetectionManifest } from "./detectionManifest.js";
import { toSourceNormalized } from "./letterbox.js";
import { mergeClasses, nms } from "./nms.js";
import { RoadConditionEstimator } from "./roadCondition.js";
import type { SnapshotStore } from "./snapshots.js";
import { Tracker } from "./tracker.js";
import type { Detection, ObjectOut } from "./types.js";

export interface CameraPipelineOptions {
  cameraId: string;
  modelId: string;
  manifest: DetectionManifest;
  detection: DetectionConfig;
  /** Detections and counts are emitted here. */
  bus: DaemonBus;
  log: Logger;
  snapshots?: SnapshotStore;
  /**
   * Track on the stream's own clock (pts) where frames carry it: for a recording read as fast as
   * it is consumed, where arrival times only measure how fast detection went.
   */
  streamClock?: boolean;
}

const round4 = (v: number) => Math.round(v * 10_000) / 10_000;

/** Resolves labels to class ids, naming the camera, the key and the model's labels when one is unknown. */
export function classIds(labels: readonly string[], manifest: DetectionManifest, where: string): Set<number> {
  const ids = new Set<number>();
  for (const l of labels) {
    const i = manifest.labels.indexOf(l);
    if (i < 0) {
      const shown = manifest.labels.slice(0, 12).join(", ");
      throw new Error(`${where}: unknown label "${l}" (model ${manifest.id} has: ${shown}${manifest.labels.length > 12 ? ", …" : ""})`);
    }
    ids.add(i);
  }
  return ids;
}

/** What one camera's pipeline counted: messages published and held back by the rate limit, tracks, snapshots. */
export interface PipelineStats {
  published: number;
  rate_limited: number;
  last_frame_ms: number;
  tracks: number;
  snapshots?: { written: number; failed: number };
}

/**
 * Everything after inference for one camera: decoding its slice of the output, class filter,
 * NMS, mapping through the letterbox, tracking, line/zone counting, the road-condition estimate,
 * and the detections / counts messages.
 */
export class CameraPipeline {
  readonly cameraId: string;
  readonly #o: CameraPipelineOptions;
  readonly #allowed: Uint8Array | undefined;
  readonly #score: number;
  readonly #iou: number;
  readonly #nmsInGraph: boolean;
  readonly #merge: { groupOf: Int32Array; iou: number } | undefined;
  readonly #tracker: Tracker;
  readonly #counter: Counter;
  readonly #road: RoadConditionEstimator;
  readonly #minGapMs: number;
  #lastPublished = -Infinity;
  #intervalStart: number;
  #frames = 0;
  #published = 0;
  #rateLimited = 0;
  #lastFrameMs = 0;
  /** The tracker's clock: the frames' clock less the still time the gate skipped. */
  #lastClockMs: number | undefined;
  #stillMs = 0;

  /** Throws a clear error for labels the model does not have. */
  constructor(o: CameraPipelineOptions, nowMs = Date.now()) {
    this.cameraId = o.cameraId;
    this.#o = o;
    const d = o.detection;
    const where = `camera "${o.cameraId}"`;
    const m = o.manifest;
    if (d.classes) {
      const ids = classIds(d.classes, m, `${where}: detection.classes`);
      this.#allowed = new Uint8Array(m.labels.length);
      for (const i of ids) this.#allowed[i] = 1;
    }
    this.#score = d.score_threshold ?? m.thresholds.score;
    this.#iou = d.nms_iou ?? m.thresholds.nms_iou;
    this.#nmsInGraph = decoderOf(m.output.decoder)?.nmsInGraph === true;
    if (d.class_merge) {
      const groupOf = new Int32Array(m.labels.length).fill(-1);
      d.class_merge.groups.forEach((g, gi) => {
        for (const id of classIds(g, m, `${where}: detection.class_merge.groups[${gi}]`)) groupOf[id] = gi;
      });
      this.#merge = { groupOf, iou: d.class_merge.iou };
    }
    this.#tracker = new Tracker({
      iouMatch: d.tracker.iou_match,
      maxMissed: d.tracker.max_missed,
      minHits: d.tracker.min_hits,
      highScore: Math.min(0.95, this.#score + 0.2),
    });
    const lines: LineSpec[] = d.lines.map((l, i) => ({
      id: l.id,
      from: l.from,
      to: l.to,
      ...(l.classes ? { classes: classIds(l.classes, m, `${where}: detection.lines[${i}].classes`) } : {}),
    }));
    const zones: ZoneSpec[] = d.zones.map((z, i) => ({
      id: z.id,
      polygon: z.polygon,
      ...(z.classes ? { classes: classIds(z.classes, m, `${where}: detection.zones[${i}].classes`) } : {}),
    }));
    this.#counter = new Counter(lines, zones, (c) => m.labels[c] ?? String(c));
    const vehicles = new Set(d.vehicle_classes.map((l) => m.labels.indexOf(l)).filter((i) => i >= 0));
    this.#road = new RoadConditionEstimator((c) => vehicles.has(c));
    this.#minGapMs = d.detections_max_rate > 0 ? 1000 / d.detections_max_rate : 0;
    this.#intervalStart = nowMs;
  }

  /**
   * A frame the motion gate skipped: nothing moved since the frame before, so the time up to it
   * is taken out of the tracker's clock. Its predictions then resume where they stood, instead of
   * carrying the last velocity across a still stretch.
   */
  skip(frame: Frame): void {
    const t = this.#clock(frame);
    if (this.#lastClockMs !== undefined && t > this.#lastClockMs) this.#stillMs += t - this.#lastClockMs;
    this.#lastClockMs = t;
  }

  #clock(frame: Frame): number {
    return this.#o.streamClock === true && frame.pts_ms !== undefined ? frame.pts_ms : frame.arrival_ms;
  }

  /** Decoding, NMS and the cross-class merge of one frame: boxes in model-input pixels, best first. */
  detect(tensors: RoleTensors, batchIndex: number): Detection[] {
    const m = this.#o.manifest;
    const raw = decode(m.output, tensors, batchIndex, {
      inputWidth: m.input.width,
      inputHeight: m.input.height,
      numClasses: m.labels.length,
      scoreThreshold: this.#score,
      ...(this.#allowed ? { allowed: this.#allowed } : {}),
    });
    // A graph with NMS inside already chose; suppressing again at our IoU would drop what it kept.
    const kept = this.#nmsInGraph ? [...raw].sort((a, b) => b.score - a.score) : nms(raw, this.#iou);
    return this.#merge ? mergeClasses(kept, this.#merge.groupOf, this.#merge.iou) : kept;
  }

  /**
   * Handles one frame's slice `batchIndex` of a run's outputs (by decoder role). Returns the
   * objects found (normalized to the camera picture), published or not.
   */
  process(frame: Frame, tensors: RoleTensors, batchIndex: number, inferenceMs: number, nowMs = Date.now()): ObjectOut[] {
    const m = this.#o.manifest;
    const mapped: Detection[] = [];
    for (const d of this.detect(tensors, batchIndex)) {
      const s = toSourceNormalized(d, frame.letterbox);
      if (s) mapped.push(s);
    }
    const frameMs = frame.arrival_ms;
    const t = this.#clock(frame);
    this.#lastClockMs = t;
    const upd = this.#tracker.update(mapped, t - this.#stillMs);
    const trackOf = new Map<Detection, number>();
    for (const { track, detection } of upd.matched) trackOf.set(detection, track.id);
    const visible = upd.matched.map((x) => x.track);
    this.#counter.observe(
      visible,
      upd.ended.map((t) => t.id),
    );
    this.#road.observe(visible, upd.born);
    const objects: ObjectOut[] = mapped.map((d) => {
      const id = trackOf.get(d);
      return { ...d, label: m.labels[d.class_id] ?? String(d.class_id), ...(id !== undefined ? { track_id: id } : {}) };
    });
    this.#frames++;
    this.#lastFrameMs = frameMs;
    if (objects.length > 0 || this.#o.detection.publish_empty) this.#publishDetections(frame, objects, inferenceMs, nowMs);
    this.#o.snapshots?.offer(frame, objects, nowMs);
    return objects;
  }

  #publishDetections(frame: Frame, objects: ObjectOut[], inferenceMs: number, nowMs: number): void {
    if (nowMs - this.#lastPublished < this.#minGapMs) {
      this.#rateLimited++;
      return;
    }
    this.#lastPublished = nowMs;
    this.#published++;
    this.#o.bus.emit("detections", {
      camera_id: this.cameraId,
      model: this.#o.modelId,
      frame: frame.index,
      frame_ts: new Date(frame.arrival_ms).toISOString(),
      ...(frame.pts_ms !== undefined ? { pts_ms: Math.round(frame.pts_ms) } : {}),
      width: frame.letterbox.src_width,
      height: frame.letterbox.src_height,
      inference_ms: Math.round(inferenceMs * 100) / 100,
      objects: objects.map((o) => ({
        label: o.label,
        class_id: o.class_id,
        score: round4(o.score),
        box: [round4(o.x1), round4(o.y1), round4(o.x2), round4(o.y2)],
        ...(o.track_id !== undefined ? { track_id: o.track_id } : {}),
      })),
    });
  }

  /** The line crossings of the current interval so far (for live views; counts are still published per interval). */
  runningCounts(): LineCounts[] {
    return this.#counter.peekLines();
  }

  /** Publishes the counts of the interval that ends now and starts the next one. */
  flushCounts(nowMs = Date.now()): CountsBody {
    const counts = this.#counter.take();
    const intervalMs = nowMs - this.#intervalStart;
    const road = this.#road.take(intervalMs, this.#counter.hasLines ? this.#crossedFor(counts.lines) : undefined);
    const body: CountsBody = {
      camera_id: this.cameraId,
      interval_start: new Date(this.#intervalStart).toISOString(),
      interval_end: new Date(nowMs).toISOString(),
      frames: this.#frames,
      lines: counts.lines,
      zones: counts.zones,
      road,
    };
    this.#intervalStart = nowMs;
    this.#frames = 0;
    this.#o.bus.emit("counts", body);
    return body;
  }

  /** Vehicles crossing lines, as the road estimate's flow: the sum over lines and directions of vehicle labels. */
  #crossedFor(lines: { counts: Record<string, { in: number; out: number }> }[]): number {
    const vehicles = new Set(this.#o.detection.vehicle_classes);
    let n = 0;
    for (const l of lines) for (const [label, c] of Object.entries(l.counts)) if (vehicles.has(label)) n += c.in + c.out;
    return n;
  }

  health(): PipelineStats {
    return {
      published: this.#published,
      rate_limited: this.#rateLimited,
      last_frame_ms: this.#lastFrameMs,
      tracks: this.#tracker.tracks.length,
      ...(this.#o.snapshots ? { snapshots: this.#o.snapshots.health() } : {}),
    };
  }
}
