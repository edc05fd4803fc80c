import { area, iou, type Box, type Detection } from "./types.js";

export interface TrackerOptions {
  /** Least IoU between a track's predicted box and a detection for them to match. */
  iouMatch: number;
  /** Frames a track survives unseen before it ends. */
  maxMissed: number;
  /** Frames a track must be seen before it is confirmed (published with an id, counted). */
  minHits: number;
  /** Detections at or above this score start tracks; lower ones only extend confirmed tracks (ByteTrack). */
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
  /** Centre at the previous sighting and now. */
  prev: [number, number];
  centre: [number, number];
  /** Centre at the track's first sighting, before it was confirmed: where its history starts. */
  origin: [number, number];
  last_ms: number;
  /**
   * Votes per class id, each detection's vote weighted by its score and its size (the square
   * root of its area): the track's class is the most voted one, so the large, close views near a
   * counting line outweigh the many small, distant ones, which the detector classifies worst.
   */
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

const voteOf = (d: Detection): number => d.score * Math.sqrt(area(d));

/** Share of `inner`'s area that lies inside `outer`. */
function covered(inner: Box, outer: Box): number {
  const w = Math.min(inner.x2, outer.x2) - Math.max(inner.x1, outer.x1);
  const h = Math.min(inner.y2, outer.y2) - Math.max(inner.y1, outer.y1);
  const a = area(inner);
  return w > 0 && h > 0 && a > 0 ? (w * h) / a : 0;
}

/** A detection at least this share inside the box of a track matched in the same frame starts no track. */
const DUPLICATE_COVER = 0.8;

/**
 * An IoU tracker in the ByteTrack style: boxes are predicted with constant velocity, confident
 * detections are matched first, weak ones then keep confirmed tracks alive (through partial
 * occlusion), and a track unseen for `maxMissed` frames ends. Ids are stable for a track's life
 * and never reused.
 *
 * A track lost for a frame or more is found again only by the IoU of its predicted box: not by
 * its last box, where another object may have arrived since (the next bus entering where the
 * last one left the picture), and not by distance. A confident detection lying mostly inside the
 * box of a track matched in the same frame starts no new track: it is a second box on an object
 * already tracked (a truck's cab, half a bus), which would otherwise be counted twice.
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
   * Greedy matching, best affinity first. The affinity is the IoU with the predicted box or, for
   * a track seen in the previous frame, with its last box, whichever is higher (a prediction can
   * overshoot when an object stops); with `byDistance`, same-class pairs whose centres are within
   * the box diagonal of a track seen in the previous frame also match, closest first (fast
   * objects at a low frame rate overlap their last box too little).
   */
  #match(
    tracks: Track[],
    predicted: Map<Track, Box>,
    dets: Detection[],
    byDistance = false,
  ): { pairs: [Track, Detection][]; tracksLeft: Track[]; detsLeft: Detection[] } {
    const cand: [number, number, number][] = [];
    tracks.forEach((t, ti) =>
      dets.forEach((d, di) => {
        const p = predicted.get(t)!;
        const lost = t.missed > 0;
        if (byDistance) {
          if (lost || d.class_id !== t.class_id) return;
          const [pcx, pcy] = centreOf(p);
          const [dcx, dcy] = centreOf(d);
          const reach = Math.hypot(t.box.x2 - t.box.x1, t.box.y2 - t.box.y1);
          const dist = Math.hypot(pcx - dcx, pcy - dcy);
          if (dist < reach) cand.push([1 - dist / reach, ti, di]);
          return;
        }
        const v = lost ? iou(p, d) : Math.max(iou(p, d), iou(t.box, d));
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
    t.votes.set(d.class_id, (t.votes.get(d.class_id) ?? 0) + voteOf(d));
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
    // Weak detections only extend confirmed tracks: a tentative track needs confident sightings.
    const second = this.#match(
      first.tracksLeft.filter((t) => t.confirmed),
      predicted,
      low,
    );
    second.tracksLeft.push(...first.tracksLeft.filter((t) => !t.confirmed));
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
    const matchedBoxes = [...first.pairs, ...second.pairs, ...third.pairs].map(([, d]) => d);
    for (const d of third.detsLeft) {
      if (matchedBoxes.some((b) => covered(d, b) >= DUPLICATE_COVER)) continue;
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
        origin: c,
        last_ms: nowMs,
        votes: new Map([[d.class_id, voteOf(d)]]),
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
