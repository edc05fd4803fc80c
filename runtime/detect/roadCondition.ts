import type { Track } from "./tracker.js";

export interface RoadCondition {
  /** Confirmed vehicles in the picture, averaged over the frames of the interval. */
  vehicles_present: number;
  /** Confirmed vehicles in the last frame. */
  vehicles_now: number;
  /** Vehicles per minute: line crossings when the camera has lines, else new vehicle tracks. */
  flow_per_min: number;
  /** Mean speed of moving-or-not vehicles, in picture widths/heights (normalized units) per second. */
  mean_speed: number;
  /** A coarse label for dashboards: many vehicles that barely move is congestion. */
  congestion: "none" | "light" | "moderate" | "heavy";
}

/** Vehicles present at or above which the road is considered busy, and speeds below which it crawls. */
const BUSY = 4;
const CRAWL = 0.02;
const SLOW = 0.06;

/**
 * Accumulates the road-condition estimate of one camera over an interval, from the confirmed
 * vehicle tracks of each processed frame.
 */
export class RoadConditionEstimator {
  readonly #isVehicle: (classId: number) => boolean;
  #frames = 0;
  #presentSum = 0;
  #now = 0;
  #speedSum = 0;
  #speedN = 0;
  #newTracks = new Set<number>();

  constructor(isVehicle: (classId: number) => boolean) {
    this.#isVehicle = isVehicle;
  }

  observe(visible: readonly Track[], born: readonly Track[]): void {
    let n = 0;
    for (const t of visible) {
      if (!this.#isVehicle(t.class_id)) continue;
      n++;
      if (t.hits > 2) {
        this.#speedSum += Math.hypot(t.vx, t.vy);
        this.#speedN++;
      }
    }
    for (const t of born) if (this.#isVehicle(t.class_id)) this.#newTracks.add(t.id);
    this.#frames++;
    this.#presentSum += n;
    this.#now = n;
  }

  /** The estimate for an interval of `intervalMs`; `crossings` is the distinct vehicles that crossed a line, or undefined without lines. */
  take(intervalMs: number, crossings: number | undefined): RoadCondition {
    const minutes = Math.max(intervalMs, 1) / 60_000;
    const present = this.#frames > 0 ? this.#presentSum / this.#frames : 0;
    const speed = this.#speedN > 0 ? this.#speedSum / this.#speedN : 0;
    const flow = (crossings ?? this.#newTracks.size) / minutes;
    let congestion: RoadCondition["congestion"] = "none";
    if (present >= 0.5) congestion = "light";
    if (present >= BUSY && speed < SLOW) congestion = "moderate";
    if (present >= BUSY && speed < CRAWL) congestion = "heavy";
    const out = {
      vehicles_present: round(present, 2),
      vehicles_now: this.#now,
      flow_per_min: round(flow, 2),
      mean_speed: round(speed, 4),
      congestion,
    };
    this.#frames = 0;
    this.#presentSum = 0;
    this.#speedSum = 0;
    this.#speedN = 0;
    this.#newTracks = new Set();
    return out;
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
