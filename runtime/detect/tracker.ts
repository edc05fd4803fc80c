import { iou, type Box, type Detection } from "./types.js";

export interface TrackerOptions {
  /** Least IoU between a track's predicted box and a detection for them to match. */
  iouMatch: number;
  /** Frames a track survives unseen before it ends. */
  maxMissed: number;
  /** Frames a track must be seen before it is confirmed (published with an id, counted). */
  minHits: number;
  /** Detections at or above this score start tracks; lower ones only extend tracks (ByteTrack). */
  highScore: number;
}

/** A tracked object, in normalized picture coordinates. */
export interface Track {
  id: number;
  box: Box;
  class_id: number;
  score: number;
  hits: number;
  missed: number;
  confirmed: boolean;
  /** Centre velocity in picture units per second. */
  vx: number;
  vy: number;
  /** Centre at the previous update and now, for line crossings. */
  prev: [number, number];
  centre: [number, number];
  last_ms: number;
  /** Votes per class id; the track's class is the most voted one. */
  votes: Map<number, number>;
}

export interface TrackUpdate {
  /** Confirmed tracks seen in this frame, with the detection each matched. */
  matched: { track: Track; detection: Detection }[];
  /** Tracks confirmed in this frame for the first time. */
  born: Track[];
  /** Tracks that ended in this frame (unseen too long). */
  ended: Track[];
}

const centreOf = (b: Box): [number, number] => [(b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2];

/**
 * An IoU tracker in the ByteTrack style: boxes are predicted with constant velocity, confident
 * detections are matched first, weak ones then keep existing tracks alive (through partial
 * occlusion), and a track unseen for `maxMissed` frames ends. Ids are stable for a track's life
 * and never reused.
 */
export class Tracker {
  readonly #o: TrackerOptions;
  #tracks: Track[] = [];
  #nextId = 1;

  constructor(options: TrackerOptions) {
    this.#o = options;
  }

  get tracks(): readonly Track[] {
    return this.#tracks;
  }

  #predict(t: Track, nowMs: number): Box {
    const dt = Math.max(0, (nowMs - t.last_ms) / 1000);
    const dx = t.vx * dt;
    const dy = t.vy * dt;
    return { x1: t.box.x1 + dx, y1: t.box.y1 + dy, x2: t.box.x2 + dx, y2: t.box.y2 + dy };
  }

  /**
   * Greedy matching, best affinity first. The affinity is the IoU with the predicted box or with
   * the last seen box, whichever is higher (a prediction can overshoot when an object stops); with
   * `byDistance`, same-class pairs whose centres are within the track's box diagonal also match,
   * closest first (fast objects at a low frame rate overlap their last box too little).
   */
  #match(tracks: Track[], predicted: Map<Track, Box>, dets: Detection[], byDistance = false): { pairs: [Track, Detection][]; tracksLeft: Track[]; detsLeft: Detection[] } {
    const cand: [number, number, number][] = [];
    tracks.forEach((t, ti) =>
      dets.forEach((d, di) => {
        const p = predicted.get(t)!;
        if (byDistance) {
          if (d.class_id !== t.class_id) return;
          const [pcx, pcy] = centreOf(p);
          const [dcx, dcy] = centreOf(d);
          const reach = Math.hypot(t.box.x2 - t.box.x1, t.box.y2 - t.box.y1);
          const dist = Math.hypot(pcx - dcx, pcy - dcy);
          if (dist < reach) cand.push([1 - dist / reach, ti, di]);
          return;
        }
        const v = Math.max(iou(p, d), iou(t.box, d));
        if (v >= this.#o.iouMatch) cand.push([v, ti, di]);
      }),
    );
    cand.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
    const usedT = new Set<number>();
    const usedD = new Set<number>();
    const pairs: [Track, Detection][] = [];
    for (const [, ti, di] of cand) {
      if (usedT.has(ti) || usedD.has(di)) continue;
      usedT.add(ti);
      usedD.add(di);
      pairs.push([tracks[ti]!, dets[di]!]);
    }
    return { pairs, tracksLeft: tracks.filter((_, i) => !usedT.has(i)), detsLeft: dets.filter((_, i) => !usedD.has(i)) };
  }

  #apply(t: Track, d: Detection, nowMs: number): void {
    const c = centreOf(d);
    const dt = (nowMs - t.last_ms) / 1000;
    if (dt > 0) {
      // Smoothed so one jittery box does not swing the prediction.
      t.vx = 0.6 * ((c[0] - t.centre[0]) / dt) + 0.4 * t.vx;
      t.vy = 0.6 * ((c[1] - t.centre[1]) / dt) + 0.4 * t.vy;
    }
    t.prev = t.centre;
    t.centre = c;
    t.box = { x1: d.x1, y1: d.y1, x2: d.x2, y2: d.y2 };
    t.score = d.score;
    t.hits++;
    t.missed = 0;
    t.last_ms = nowMs;
    t.votes.set(d.class_id, (t.votes.get(d.class_id) ?? 0) + 1);
    let best = t.class_id;
    for (const [cls, n] of t.votes) if (n > (t.votes.get(best) ?? 0)) best = cls;
    t.class_id = best;
  }

  /** Feeds one frame's detections (normalized boxes) taken at `nowMs`. */
  update(dets: readonly Detection[], nowMs: number): TrackUpdate {
    const predicted = new Map(this.#tracks.map((t) => [t, this.#predict(t, nowMs)] as const));
    const high = dets.filter((d) => d.score >= this.#o.highScore);
    const low = dets.filter((d) => d.score < this.#o.highScore);
    const first = this.#match(this.#tracks, predicted, high);
    const second = this.#match(first.tracksLeft, predicted, low);
    const third = this.#match(second.tracksLeft, predicted, first.detsLeft, true);
    const out: TrackUpdate = { matched: [], born: [], ended: [] };
    for (const [t, d] of [...first.pairs, ...second.pairs, ...third.pairs]) {
      this.#apply(t, d, nowMs);
      if (!t.confirmed && t.hits >= this.#o.minHits) {
        t.confirmed = true;
        out.born.push(t);
      }
      if (t.confirmed) out.matched.push({ track: t, detection: d });
    }
    const thirdMatched = new Set(third.pairs.map(([t]) => t));
    for (const t of second.tracksLeft) {
      if (thirdMatched.has(t)) continue;
      t.missed++;
      // An unseen track stays where it was last seen: counting uses real sightings only.
      t.prev = t.centre;
    }
    const alive: Track[] = [];
    for (const t of this.#tracks) {
      // Unconfirmed tracks that miss a frame were probably noise.
      if (t.missed > this.#o.maxMissed || (!t.confirmed && t.missed > 0)) out.ended.push(t);
      else alive.push(t);
    }
    for (const d of third.detsLeft) {
      const c = centreOf(d);
      const t: Track = {
        id: this.#nextId++,
        box: { x1: d.x1, y1: d.y1, x2: d.x2, y2: d.y2 },
        class_id: d.class_id,
        score: d.score,
        hits: 1,
        missed: 0,
        confirmed: this.#o.minHits <= 1,
        vx: 0,
        vy: 0,
        prev: c,
        centre: c,
        last_ms: nowMs,
        votes: new Map([[d.class_id, 1]]),
      };
      alive.push(t);
      if (t.confirmed) {
        out.born.push(t);
        out.matched.push({ track: t, detection: d });
      }
    }
    this.#tracks = alive;
    return out;
  }
}
