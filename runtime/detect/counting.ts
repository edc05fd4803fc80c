import type { Track } from "./tracker.js";

export type Point = readonly [number, number];

export interface LineSpec {
  id: string;
  from: Point;
  to: Point;
  /** Class ids counted; undefined counts every class. */
  classes?: ReadonlySet<number>;
}

export interface ZoneSpec {
  id: string;
  polygon: readonly Point[];
  classes?: ReadonlySet<number>;
}

/** Which side of the directed line from→to a point is on: > 0 right (in picture coordinates, y down), < 0 left. */
export function side(from: Point, to: Point, p: Point): number {
  return (to[0] - from[0]) * (p[1] - from[1]) - (to[1] - from[1]) * (p[0] - from[0]);
}

/**
 * Whether the move a→b crosses the line segment from→to, and which way: "in" from its left to
 * its right, "out" from right to left; undefined when it does not cross. A point exactly on the
 * line belongs to its left side, so a track stepping onto the line and then off it counts once.
 */
export function crossing(from: Point, to: Point, a: Point, b: Point): "in" | "out" | undefined {
  const ra = side(from, to, a) > 0;
  const rb = side(from, to, b) > 0;
  if (ra === rb) return undefined;
  // The move must also pass between the line's ends.
  const ta = side(a, b, from);
  const tb = side(a, b, to);
  if (ta !== 0 && tb !== 0 && ta > 0 === tb > 0) return undefined;
  return rb ? "in" : "out";
}

/** Ray casting: whether p is inside the polygon. */
export function inPolygon(poly: readonly Point[], p: Point): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i]!;
    const [xj, yj] = poly[j]!;
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export interface LineCounts {
  line_id: string;
  /** Per label: crossings in each direction. */
  counts: Record<string, { in: number; out: number }>;
}

export interface ZoneCounts {
  zone_id: string;
  /** Per label: tracks that entered during the interval. */
  entered: Record<string, number>;
  /** Per label: tracks inside at the end of the interval. */
  present: Record<string, number>;
}

/**
 * Counts confirmed tracks crossing lines (direction-aware) and entering zones, per label, for
 * one interval at a time. `take()` returns the interval's counts and starts the next one.
 * A track that crosses a line and comes straight back within the same interval counts for
 * neither direction, so a box jittering on the line is counted once, not three times.
 */
export class Counter {
  readonly #lines: readonly LineSpec[];
  readonly #zones: readonly ZoneSpec[];
  readonly #label: (classId: number) => string;
  #lineCounts = new Map<string, Map<string, { in: number; out: number }>>();
  #entered = new Map<string, Map<string, number>>();
  /** Per zone: ids of the tracks inside now, with their label. */
  readonly #inside = new Map<string, Map<number, string>>();
  /** Tracks that crossed any line in this interval (for flow). */
  #crossedTracks = new Set<number>();
  /** Per "track:line": the direction last counted in this interval, so a crossing straight back can undo it. */
  #lastCrossing = new Map<string, "in" | "out">();

  constructor(lines: readonly LineSpec[], zones: readonly ZoneSpec[], label: (classId: number) => string) {
    this.#lines = lines;
    this.#zones = zones;
    this.#label = label;
    for (const z of zones) this.#inside.set(z.id, new Map());
  }

  get hasLines(): boolean {
    return this.#lines.length > 0;
  }

  /** Crossings recorded for the interval so far, by distinct track. */
  get crossedTracks(): number {
    return this.#crossedTracks.size;
  }

  /** Feeds the confirmed tracks that moved in this frame, and the ids of tracks that ended. */
  observe(moved: readonly Track[], endedIds: readonly number[]): void {
    for (const t of moved) {
      const label = this.#label(t.class_id);
      for (const l of this.#lines) {
        if (l.classes && !l.classes.has(t.class_id)) continue;
        const dir = crossing(l.from, l.to, t.prev, t.centre);
        if (dir === undefined) continue;
        let per = this.#lineCounts.get(l.id);
        if (!per) this.#lineCounts.set(l.id, (per = new Map()));
        let c = per.get(label);
        if (!c) per.set(label, (c = { in: 0, out: 0 }));
        const key = `${t.id}:${l.id}`;
        const before = this.#lastCrossing.get(key);
        if (before !== undefined && before !== dir) {
          // Back over the line within the interval: jitter on the line, or a turn back. Neither passed.
          c[before]--;
          this.#lastCrossing.delete(key);
        } else {
          c[dir]++;
          this.#lastCrossing.set(key, dir);
          this.#crossedTracks.add(t.id);
        }
      }
      for (const z of this.#zones) {
        if (z.classes && !z.classes.has(t.class_id)) continue;
        const inside = this.#inside.get(z.id)!;
        const now = inPolygon(z.polygon, t.centre);
        if (now && !inside.has(t.id)) {
          inside.set(t.id, label);
          let per = this.#entered.get(z.id);
          if (!per) this.#entered.set(z.id, (per = new Map()));
          per.set(label, (per.get(label) ?? 0) + 1);
        } else if (!now) {
          inside.delete(t.id);
        }
      }
    }
    for (const id of endedIds) for (const inside of this.#inside.values()) inside.delete(id);
  }

  take(): { lines: LineCounts[]; zones: ZoneCounts[] } {
    const lines = this.#lines.map((l) => ({ line_id: l.id, counts: Object.fromEntries(this.#lineCounts.get(l.id) ?? []) }));
    const zones = this.#zones.map((z) => {
      const present: Record<string, number> = {};
      for (const label of this.#inside.get(z.id)!.values()) present[label] = (present[label] ?? 0) + 1;
      return { zone_id: z.id, entered: Object.fromEntries(this.#entered.get(z.id) ?? []), present };
    });
    this.#lineCounts = new Map();
    this.#entered = new Map();
    this.#crossedTracks = new Set();
    this.#lastCrossing = new Map();
    return { lines, zones };
  }
}
